// Optional dependency (npm:@tensorflow/tfjs-node): imported only for its side effect of registering
// the native 'tensorflow' backend with @tensorflow/tfjs; absent where its binary cannot be installed.
declare module 'tfjs-node-native';
