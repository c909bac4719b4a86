// diffusers' AutoencoderKLWan names of the Wan 2.1 VAE, read back into Wan's own (wan_2.1_vae) names.
// diffusers renames without fusing: encoder blocks keep Wan's flat numbering (`encoder.down_blocks.N`),
// residual layers become norm1/conv1/norm2/conv2/conv_shortcut, the middle becomes mid_block, the head
// norm_out/conv_out, the top convs quant_conv/post_quant_conv, and the decoder's flat list is grouped
// per level: `decoder.up_blocks.L.resnets.R` and `decoder.up_blocks.L.upsamplers.0`.
// Facts from diffusers' scripts/convert_wan_to_diffusers.py (convert_vae).

const RESIDUAL: readonly [string, string][] = [
  ['norm1.gamma', 'residual.0.gamma'], ['conv1.', 'residual.2.'], ['norm2.gamma', 'residual.3.gamma'], ['conv2.', 'residual.6.'], ['conv_shortcut.', 'shortcut.'],
];
const residualToWan = (rest: string) => {
  for (const [d, w] of RESIDUAL) if (rest.startsWith(d)) return w + rest.slice(d.length);
  return rest;
};

/**
 * A diffusers Wan 2.1 VAE tensor name → its Wan name; `resnetsPerLevel` is the decoder's resnets per up
 * block (Wan's num_res_blocks + 1). Undefined for names the VAE does not have.
 */
export function diffusersVaeToWan(key: string, resnetsPerLevel: number): string | undefined {
  let m: RegExpMatchArray | null;
  if ((m = key.match(/^quant_conv\.(.+)$/))) return `conv1.${m[1]}`;
  if ((m = key.match(/^post_quant_conv\.(.+)$/))) return `conv2.${m[1]}`;
  if ((m = key.match(/^(encoder|decoder)\.conv_in\.(.+)$/))) return `${m[1]}.conv1.${m[2]}`;
  if ((m = key.match(/^(encoder|decoder)\.norm_out\.gamma$/))) return `${m[1]}.head.0.gamma`;
  if ((m = key.match(/^(encoder|decoder)\.conv_out\.(.+)$/))) return `${m[1]}.head.2.${m[2]}`;
  if ((m = key.match(/^(encoder|decoder)\.mid_block\.resnets\.([01])\.(.+)$/))) return `${m[1]}.middle.${m[2] === '0' ? 0 : 2}.${residualToWan(m[3])}`;
  if ((m = key.match(/^(encoder|decoder)\.mid_block\.attentions\.0\.(.+)$/))) return `${m[1]}.middle.1.${m[2]}`;
  if ((m = key.match(/^encoder\.down_blocks\.(\d+)\.(.+)$/))) return `encoder.downsamples.${m[1]}.${residualToWan(m[2])}`;
  const stride = resnetsPerLevel + 1;
  if ((m = key.match(/^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/))) return `decoder.upsamples.${Number(m[1]) * stride + Number(m[2])}.${residualToWan(m[3])}`;
  if ((m = key.match(/^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.+)$/))) return `decoder.upsamples.${Number(m[1]) * stride + resnetsPerLevel}.${m[2]}`;
  return undefined;
}

/** Resnets per decoder up block of a diffusers Wan VAE, counted from its names (0 when it is not one). */
export function diffusersVaeResnetsPerLevel(keys: Iterable<string>): number {
  let n = 0;
  for (const k of keys) { const m = k.match(/^decoder\.up_blocks\.0\.resnets\.(\d+)\./); if (m) n = Math.max(n, Number(m[1]) + 1); }
  return n;
}
