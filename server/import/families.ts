// Model families as the config formats name them (ai-toolkit's `arch` / `is_*` flags, kohya's `sdxl` / `v2` /
// `flux1` switches) mapped to loragraph's family ids, and the one place that asks which families train today.
import { trainableFamilies } from '../../kernels/families/registry';

export interface FamilyInfo {
  /** loragraph's family id (kernels/families/detect.ts): sd1, sdxl, flux1, flux2, wan, … */
  id: string;
  /** What the user knows it as, with the variant: "Wan 2.2 14B (text-to-video, two experts)". */
  label: string;
  trainable: boolean;
  /** The key and value it was read from. */
  from: string;
}

/** ai-toolkit `arch` values → family id and label. Archs missing here are named as given and not trainable. */
const AI_TOOLKIT_ARCH: Record<string, [string, string]> = {
  sd1: ['sd1', 'Stable Diffusion 1.x'],
  sd2: ['sd2', 'Stable Diffusion 2.x'],
  sdxl: ['sdxl', 'SDXL'],
  ssd: ['sdxl', 'SSD-1B (distilled SDXL)'],
  vega: ['sdxl', 'Segmind Vega (distilled SDXL)'],
  sd3: ['sd3', 'Stable Diffusion 3'],
  flux: ['flux1', 'FLUX.1'],
  flex1: ['flux1', 'Flex.1 (FLUX.1 architecture)'],
  flex2: ['flux1', 'Flex.2 (FLUX.1 architecture)'],
  flux_kontext: ['flux1', 'FLUX.1 Kontext'],
  chroma: ['chroma', 'Chroma'],
  // ai-toolkit's Flux2Model (arch flux2) is FLUX.2 [dev]: flux2-dev.safetensors with Mistral Small 3.1, guidance-distilled.
  flux2: ['flux2', 'FLUX.2 [dev]'],
  flux2_klein_4b: ['flux2', 'FLUX.2 [klein] 4B'],
  flux2_klein_9b: ['flux2', 'FLUX.2 [klein] 9B'],
  wan21: ['wan', 'Wan 2.1 (text-to-video)'],
  wan21_i2v: ['wan', 'Wan 2.1 (image-to-video)'],
  wan22_5b: ['wan', 'Wan 2.2 5B'],
  wan22_14b: ['wan', 'Wan 2.2 14B (text-to-video, high/low-noise experts)'],
  wan22_14b_i2v: ['wan', 'Wan 2.2 14B (image-to-video, high/low-noise experts)'],
  zimage: ['zimage', 'Z-Image'],
  qwen_image: ['qwen-image', 'Qwen-Image'],
  qwen_image_edit: ['qwen-image', 'Qwen-Image-Edit'],
  qwen_image_edit_plus: ['qwen-image', 'Qwen-Image-Edit-2509'],
  pixart: ['pixart', 'PixArt-α'],
  pixart_sigma: ['pixart', 'PixArt-Σ'],
  auraflow: ['auraflow', 'AuraFlow'],
  lumina2: ['lumina2', 'Lumina-Image 2.0'],
  hidream: ['hidream', 'HiDream-I1'],
  omnigen2: ['omnigen2', 'OmniGen2'],
  ltx2: ['ltx', 'LTX-2'],
};

/** ai-toolkit's legacy switches, checked in its own order (toolkit/config_modules.py ModelConfig). */
export const AI_TOOLKIT_FLAGS: readonly [string, string][] = [
  ['is_v2', 'sd2'], ['is_v3', 'sd3'], ['is_xl', 'sdxl'], ['is_pixart', 'pixart'], ['is_pixart_sigma', 'pixart_sigma'],
  ['is_auraflow', 'auraflow'], ['is_flux', 'flux'], ['is_lumina2', 'lumina2'], ['is_vega', 'vega'], ['is_ssd', 'ssd'],
];

/** The family ids loragraph can train now, from the family registry: families are picked up as they land. */
export async function trainableFamilyIds(): Promise<Set<string>> {
  return new Set(trainableFamilies().map((f) => f.id));
}

export async function familyFromArch(arch: string, from: string): Promise<FamilyInfo> {
  const [id, label] = AI_TOOLKIT_ARCH[arch] ?? [arch, `${arch} (an ai-toolkit architecture loragraph does not know)`];
  return { id, label, from, trainable: (await trainableFamilyIds()).has(id) };
}

/**
 * ai-toolkit's arch for a loragraph family id (Load Model's family widget), for `loragraph export`: the
 * first arch naming the family, FLUX.2 being [klein] 9B here (loragraph's FLUX.2 is klein or dev, which the
 * graph alone does not tell; 4B: --arch flux2_klein_4b, dev: --arch flux2).
 */
export function aiToolkitArchOf(id: string): string | undefined {
  if (id === 'flux2') return 'flux2_klein_9b';
  return Object.entries(AI_TOOLKIT_ARCH).find(([, [family]]) => family === id)?.[0];
}

/** kohya's switches: `sdxl`, `v2`, `flux1_checkbox` / LoRA_type "Flux1", `sd3_checkbox`; none of them means SD 1.x. */
export async function familyFromKohya(s: { sdxl?: boolean; v2?: boolean; flux1?: boolean; sd3?: boolean }, from: string): Promise<FamilyInfo> {
  const [id, label] = s.flux1 ? ['flux1', 'FLUX.1'] : s.sd3 ? ['sd3', 'Stable Diffusion 3'] : s.sdxl ? ['sdxl', 'SDXL'] : s.v2 ? ['sd2', 'Stable Diffusion 2.x'] : ['sd1', 'Stable Diffusion 1.x'];
  return { id, label, from, trainable: (await trainableFamilyIds()).has(id) };
}

/** Families built on transformers (DiT/MMDiT): ai-toolkit trains their LoRAs at alpha = rank whatever linear_alpha says. */
export function isTransformerFamily(id: string): boolean {
  return !['sd1', 'sd2', 'sdxl'].includes(id);
}
