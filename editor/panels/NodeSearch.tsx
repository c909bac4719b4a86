// The node library as a search box: opens on a double-click on empty canvas or when you start typing; lists node
// types grouped by category, filtered as you type, with each type's description and its widgets' tooltips.
import { useEffect, useMemo, useRef, useState } from 'react';
import type { NodeInfo } from '../../server/protocol';
import { editorStore } from '../state/editor';
import { useStore } from '../state/store';

function score(info: NodeInfo, words: string[]): number {
  if (!words.length) return 1;
  const hay = `${info.title} ${info.type} ${info.category} ${info.description}`.toLowerCase();
  const title = info.title.toLowerCase();
  let s = 0;
  for (const w of words) {
    if (!hay.includes(w)) return 0;
    s += title.startsWith(w) ? 3 : title.includes(w) ? 2 : 1;
  }
  return s;
}

export function NodeSearch(props: { onPick(type: string, at: { x: number; y: number }): void }) {
  const search = useStore(editorStore, (s) => s.search);
  const objectInfo = useStore(editorStore, (s) => s.objectInfo);
  const [query, setQuery] = useState('');
  const [active, setActive] = useState(0);
  const input = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (search) {
      setQuery(search.query);
      setActive(0);
      setTimeout(() => input.current?.focus(), 0);
    }
  }, [search]);

  const groups = useMemo(() => {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    const hits = Object.values(objectInfo ?? {})
      .map((info) => ({ info, s: score(info, words) }))
      .filter((h) => h.s > 0)
      .sort((a, b) => a.info.category.localeCompare(b.info.category) || b.s - a.s || a.info.title.localeCompare(b.info.title));
    const byCat = new Map<string, NodeInfo[]>();
    for (const h of hits) byCat.set(h.info.category, [...(byCat.get(h.info.category) ?? []), h.info]);
    return [...byCat.entries()];
  }, [query, objectInfo]);
  const flat = groups.flatMap(([, list]) => list);
  const current = flat[Math.min(active, flat.length - 1)];

  if (!search) return null;
  const close = () => editorStore.set((s) => ({ ...s, search: null }));
  const pick = (info: NodeInfo | undefined) => {
    if (!info) return;
    close();
    props.onPick(info.type, { x: search.x, y: search.y });
  };
  const left = Math.min(search.x, window.innerWidth - 560);
  const top = Math.min(search.y, window.innerHeight - 420);

  return (
    <div className="search-backdrop" onPointerDown={(e) => e.target === e.currentTarget && close()}>
      <div className="node-search" style={{ left, top }} role="dialog" aria-label="Add a node">
        <input
          ref={input}
          className="node-search-input"
          placeholder="Search nodes…"
          value={query}
          onChange={(e) => {
            setQuery(e.target.value);
            setActive(0);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Escape') close();
            else if (e.key === 'ArrowDown') setActive((a) => Math.min(a + 1, flat.length - 1));
            else if (e.key === 'ArrowUp') setActive((a) => Math.max(a - 1, 0));
            else if (e.key === 'Enter') pick(current);
            else return;
            e.preventDefault();
          }}
        />
        <div className="node-search-body">
          <ul className="node-search-list">
            {groups.map(([cat, list]) => (
              <li key={cat}>
                <div className="node-search-category">{cat}</div>
                <ul>
                  {list.map((info) => (
                    <li
                      key={info.type}
                      className={info === current ? 'active' : ''}
                      data-type={info.type}
                      onPointerEnter={() => setActive(flat.indexOf(info))}
                      onClick={() => pick(info)}
                    >
                      {info.title}
                      {info.title !== info.type && <span className="node-search-type">{info.type}</span>}
                    </li>
                  ))}
                </ul>
              </li>
            ))}
            {!flat.length && <li className="node-search-empty">no node matches "{query}"</li>}
          </ul>
          {current && (
            <div className="node-search-detail">
              <h3>{current.title}</h3>
              <p>{current.description || 'No description.'}</p>
              {current.inputs.length > 0 && (
                <p className="sockets">in: {current.inputs.map((i) => `${i.name} (${i.type}${i.optional ? '?' : ''})`).join(', ')}</p>
              )}
              {current.outputs.length > 0 && <p className="sockets">out: {current.outputs.map((o) => `${o.name} (${o.type})`).join(', ')}</p>}
              <dl>
                {current.widgets.map((w) => (
                  <div key={w.name}>
                    <dt>{w.name}</dt>
                    <dd>{w.tooltip ?? w.kind}</dd>
                  </div>
                ))}
              </dl>
            </div>
          )}
        </div>
      </div>
    </div>
  );
}
