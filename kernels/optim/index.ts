// The optimizers, each a composition of table ops behind the Optimizer contract, and a factory by the
// names kohya / ai-toolkit users type (`optimizer_type`).
import type { Optimizer } from './optimizer';
import { adamw, type AdamWOptions } from './adamw';
import { adamw8bit, type AdamW8bitOptions } from './adamw8bit';
import { adafactor, type AdafactorOptions } from './adafactor';
import { lion, type LionOptions } from './lion';
import { prodigy, type ProdigyOptions } from './prodigy';
import { sgd, type SgdOptions } from './sgd';

export type { Optimizer, StateSpec, StepScalars, ParamSlot } from './optimizer';
export { adamw, adamw8bit, adafactor, lion, prodigy, sgd };
export type { AdamWOptions, AdamW8bitOptions, AdafactorOptions, LionOptions, ProdigyOptions, SgdOptions };
export { dynamicMap, codeThresholds, quantizeBlockwise, dequantizeBlockwise, BLOCK_SIZE } from './blockwise-8bit';

export interface OptimizerOptionsByName {
  adamw: AdamWOptions;
  adamw8bit: AdamW8bitOptions;
  adafactor: AdafactorOptions;
  lion: LionOptions;
  prodigy: ProdigyOptions;
  sgd: SgdOptions;
}
export type OptimizerName = keyof OptimizerOptionsByName;
export const OPTIMIZER_NAMES: readonly OptimizerName[] = ['adamw', 'adamw8bit', 'adafactor', 'lion', 'prodigy', 'sgd'];

/** An optimizer by name (case-insensitive; `AdamW8bit`, `Prodigy`, … as kohya spells them). */
export function createOptimizer<N extends OptimizerName>(name: N | string, options: OptimizerOptionsByName[N] = {} as OptimizerOptionsByName[N]): Optimizer {
  switch (name.toLowerCase()) {
    case 'adamw': return adamw(options as AdamWOptions);
    case 'adamw8bit': return adamw8bit(options as AdamW8bitOptions);
    case 'adafactor': return adafactor(options as AdafactorOptions);
    case 'lion': return lion(options as LionOptions);
    case 'prodigy': return prodigy(options as ProdigyOptions);
    case 'sgd': case 'sgdnesterov': return sgd({ ...(options as SgdOptions), ...(name.toLowerCase() === 'sgdnesterov' ? { nesterov: true } : {}) });
    default: throw new Error(`unknown optimizer '${name}' (expected one of ${OPTIMIZER_NAMES.join(', ')})`);
  }
}
