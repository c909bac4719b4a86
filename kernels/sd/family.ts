// Which model family a checkpoint belongs to: SD's loader refuses other families by these names. The
// detection itself lives with the family registry (kernels/families/detect.ts), shared by every family.
export { detectFamily, FAMILY_LABELS as FAMILY_LABEL, type DetectedFamily as ModelFamily, type FamilyEvidence } from '../families/detect';
