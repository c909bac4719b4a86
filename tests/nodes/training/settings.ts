// The trainer tests' TrainSettings: the Train node's own widget defaults (its zod schema), with what a
// test changes laid over them, so a new setting needs no edit in every test that calls trainSd.
import trainNode from '../../../nodes/train';
import type { TrainSettings } from '../../../nodes/training/trainer';

/**
 * Train's defaults as trainSd takes them, then `over`. Widgets the node turns into something else
 * (stepsFrom/repeats/epochs into steps, gradientCheckpointing 'auto', the multistage trio) and those it handles
 * itself (saveName) are left out: gradient checkpointing off and a single stage unless `over` says so.
 */
export function trainSettings(over: Partial<TrainSettings> = {}): TrainSettings {
  const { stepsFrom, repeats, epochs, saveName, trainStages, switchEvery, boundary, gradientCheckpointing, ...settings } = trainNode.widgets.parse({});
  // The node's schema is typed loosely (z.ZodObject): its defaults are trainSd's fields of the same names.
  return { ...(settings as Omit<TrainSettings, 'gradientCheckpointing' | 'multistage'>), ...over };
}
