// Live updates by polling: simple, works through any proxy, and the API stays plain JSON.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";

// ``keepPolling(data)`` may stop the polling once the data can no longer change
// (a finished run): a 1,000-step timeline is then not re-rendered for nothing.
export function usePoll(load, deps, intervalMs = 2000, keepPolling = null) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const latest = useRef(null);
  latest.current = state.data;
  const generation = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  const refresh = useCallback(async () => {
    const mine = generation.current;
    try {
      const data = await loadRef.current();
      if (mine === generation.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === generation.current) setState((s) => ({ data: s.data, error, loading: false }));
    }
  }, []);

  useEffect(() => {
    generation.current += 1;
    setState({ data: null, error: null, loading: true });
    refresh();
    if (!intervalMs) return undefined;
    const timer = setInterval(() => {
      if (document.hidden) return;
      if (keepPolling && latest.current && !keepPolling(latest.current)) return;
      refresh();
    }, intervalMs);
    return () => clearInterval(timer);
  }, deps);

  return { ...state, refresh };
}
