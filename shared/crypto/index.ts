// Public door of shared/crypto: the data key and authenticated encryption of stored blobs.

export type { DataKey, DataKeyProvider } from './data-key.ts';
export {
  commandKeyProvider,
  createDataKeyFile,
  DATA_KEY_ENV,
  dataKeyId,
  envKeyProvider,
  fileKeyProvider,
  loadDataKey,
  parseDataKey,
  randomDataKey,
} from './data-key.ts';
export { isSealed, openBlob, sealBlob, sealedKeyId } from './sealed-blob.ts';
