// The SDXL family: kohya's main model. `sdxlFamily` is what nodes use (kernels/families/contract.ts);
// the rest is exported for tests, benchmarks and LoRA-format code.
export { sdxlFamily, firstEosIndex } from './family';
export { SDXL_BASE, SDXL_VAE_SCALE, SIZE_CONDITIONING_COUNT, tinySdxlConfig, checkSdxlConfig, type SdxlConfig, type ClipTextWithProjectionConfig } from './config';
export { sizeConditioningValues, flippedCropLeft, sizeFeatures, addedEmbeddingInput, type SizeConditioning } from './conditioning';
export { clipLPenultimate, bigGText, sdxlTextEncode, type SdxlTextOutput, type BigGOutput } from './text';
export { sdxlUnet, type SdxlUNetInputs } from './unet';
export { sdxlComponentTensors, SdxlKeyMap, SDXL_COMPONENTS, SDXL_SINGLE_FILE_PREFIX, sdxlSingleFileSlot, singleFileShape, isIgnoredSdxlKey, type SdxlComponent, type SingleFileSlot } from './keys';
export { loadSdxl, loadSdxlSingleFile, loadSdxlDiffusersFolder, loadSdxlUnet, type LoadedSdxl, type SdxlLoadOptions } from './load';
export { saveSdxlSingleFile, saveSdxlDiffusersFolder, seededSdxlFill, sdxlDiffusersConfigs, SDXL_CONFIG_METADATA_KEY, type SdxlTensorFill, type SdxlSaveOptions } from './save';
export {
  sdxlLoraName, sdxlKohyaName, sdxlPeftName, sdxlModulePath, sgmModulePath, isSdxlKohyaDefaultTarget,
  SDXL_LORA_COMPONENTS, SDXL_KOHYA_PREFIX, SDXL_PEFT_PREFIX, SDXL_LORA_METADATA, type SdxlLoraComponent,
} from './lora-names';
