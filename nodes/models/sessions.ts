// Compiled ORT sessions kept per weight source and graph shape, so repeated encodes and samples with the
// same shapes reuse one session instead of compiling the model again. Held weakly by the weights:
// when a MODEL/CLIP/VAE value is dropped from the executor's cache, its sessions can go too.
import { defaultRuntime, type CompiledGraph, type Runtime, type Session } from '../../kernels';

const byOwner = new WeakMap<object, Map<string, Promise<Session>>>();

/** The session for (`owner`, `key`), compiling `build()` on first use; a failed build is not remembered. */
export function cachedSession(owner: object, key: string, build: () => CompiledGraph, rt: Runtime = defaultRuntime()): Promise<Session> {
  let sessions = byOwner.get(owner);
  if (!sessions) byOwner.set(owner, (sessions = new Map()));
  let s = sessions.get(key);
  if (!s) {
    s = Promise.resolve().then(() => rt.load(build()));
    s.catch(() => sessions!.delete(key));
    sessions.set(key, s);
  }
  return s;
}
