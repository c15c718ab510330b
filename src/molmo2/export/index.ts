// Export formats for a result; the native JSON is lossless, the others derive from it.
export { buildResult, exportResultJson, importResultJson, questionTask, RESULT_FORMAT, RESULT_VERSION } from './result.ts';
export type { ImportOutcome, ResultInput, ResultJson, ResultPoint } from './result.ts';
export { exportCsv, CSV_COLUMNS } from './csv.ts';
export { exportCvatVideo } from './cvat.ts';
export { exportCocoKeypoints } from './coco.ts';
export type { CocoKeypoints, CocoOptions } from './coco.ts';
export { exportMot } from './mot.ts';
export type { MotOptions } from './mot.ts';
