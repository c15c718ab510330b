// Independent fp32 reference of the Molmo2 forward pass (see README.md in the parent folder).
export { ReferenceModel, type GenerateOptions, type GenerateResult } from './model.ts';
export { type KvCache } from './decoder.ts';
export { type TensorSource } from './weights.ts';
export { groupedAttention, type HeadLayout } from './ops.ts';
export { MolmoPointReference, composeLogits, groundingText, type PointImages, type PointSession, type PointStep, type PointGenerateOptions, type PointGenerateResult } from './molmopoint.ts';
