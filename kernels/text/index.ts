// Text encoders shared by several families (T5 for FLUX.1 and SD3, UMT5 for Wan) and their tokenizers.
export * from './t5';
export * from './t5-tokenizer';
export * from './unigram-tokenizer-json';
