// LoRA tensor names as kohya's sd-scripts writes them (and ComfyUI, A1111/Forge load them): the module
// path with dots turned into underscores behind a model prefix, e.g. `down_blocks.0.attentions.0.proj_in`
// → `lora_unet_down_blocks_0_attentions_0_proj_in`, then `.lora_down.weight` / `.lora_up.weight` / `.alpha`.

/** Maps a module path to its kohya LoRA name. */
export type LoraNamer = (modulePath: string) => string;

/**
 * A namer for models whose builder scopes sub-models by a root segment: `roots` maps a root (e.g.
 * `text_encoder`, `unet`) to its kohya prefix (`lora_te`, `lora_unet`); the root segment itself is
 * dropped, so `text_encoder.text_model.encoder.layers.0.mlp.fc1` → `lora_te_text_model_encoder_layers_0_mlp_fc1`
 * as kohya names it. Other paths get `fallback` + the whole path.
 */
export function kohyaNamer(roots: Record<string, string> = {}, fallback = 'lora_unet'): LoraNamer {
  const entries = Object.entries(roots).sort((a, b) => b[0].length - a[0].length);
  return (path) => {
    for (const [root, prefix] of entries) {
      if (path.startsWith(`${root}.`)) return `${prefix}_${path.slice(root.length + 1).replace(/\./g, '_')}`;
    }
    return `${fallback}_${path.replace(/\./g, '_')}`;
  };
}
