export interface PurchaseTable {
  order_id: string;
  contact_id: number;
  product_id: number;
  quantity: number;
  unit_price: number;
  purchased_at: Date;
  import_id: number | null;
}
