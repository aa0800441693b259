/** Who acts, in audit lines and manifests, for a request made with an API key (the API's or a review-page session's). */
export function apiKeyActor(key: { id: number; name: string }): string {
  return `apikey:${key.id}:${key.name}`;
}
