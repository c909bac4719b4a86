// Whether a file the user opens or drops is a training config to import (ai-toolkit, kohya_ss, sd-scripts)
// rather than a graph: decided by name and content, without the network.
/** Whether a file is a config to import rather than a graph: YAML/TOML always, JSON when it is not a workflow/API graph. */
export function isConfigFile(name: string, text: string): boolean {
  if (/\.(ya?ml|toml)$/i.test(name)) return true;
  if (!/\.(json|jsonc)$/i.test(name)) return false;
  try {
    const raw = JSON.parse(text) as Record<string, unknown>;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw.nodes)) return false;
    return ('job' in raw && 'config' in raw) || 'LoRA_type' in raw || 'network_dim' in raw || 'pretrained_model_name_or_path' in raw;
  } catch {
    return false;
  }
}
