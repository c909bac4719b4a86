// A minimal external store: plain state replaced by pure updates, read by React through useSyncExternalStore and
// by the canvas wrapper through subscribe. Server messages and UI actions are the only writers.
import { useSyncExternalStore } from 'react';

export interface Store<S> {
  get(): S;
  set(update: (s: S) => S): void;
  subscribe(listener: (s: S) => void): () => void;
}

export function createStore<S>(initial: S): Store<S> {
  let state = initial;
  const listeners = new Set<(s: S) => void>();
  return {
    get: () => state,
    set(update) {
      const next = update(state);
      if (next === state) return;
      state = next;
      for (const l of [...listeners]) l(state);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export function useStore<S, T>(store: Store<S>, select: (s: S) => T): T {
  return useSyncExternalStore(store.subscribe, () => select(store.get()));
}
