/**
 * Jest's node environment runs tests in a separate realm, where `Float32Array` is not the
 * constructor of the typed arrays that onnxruntime-node's native binding returns: ONNX Runtime's
 * `instanceof` checks on output tensors then fail. Tests share the main realm's typed-array
 * constructors, as production (one realm) does.
 */
const { TestEnvironment } = require('jest-environment-node');

const SHARED_TYPED_ARRAYS = ['Float32Array', 'Float64Array', 'Int8Array', 'Int16Array', 'Int32Array', 'Uint16Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array'];

class SharedTypedArraysEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED_TYPED_ARRAYS) this.global[name] = globalThis[name];
  }
}

module.exports = SharedTypedArraysEnvironment;
