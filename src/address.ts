// `host:port` addresses, the one place that splits them: `[v6]:port` keeps its brackets
// in `host`, and a bare IPv6 address (more than one `:`) is not an address.

/** Splits `host:port` / `[v6]:port` (the port may be absent); undefined when malformed. */
export function splitHostPort(value: string): { host: string; port: string | undefined } | undefined {
  if (value.startsWith("[")) {
    const close = value.indexOf("]");
    if (close < 0) return undefined;
    const after = value.slice(close + 1);
    if (after === "") return { host: value.slice(0, close + 1), port: undefined };
    if (!after.startsWith(":")) return undefined;
    return { host: value.slice(0, close + 1), port: after.slice(1) };
  }
  const parts = value.split(":");
  if (parts.length > 2) return undefined; // a bare IPv6 address needs brackets
  return { host: parts[0]!, port: parts[1] };
}

/** A listen address (already checked by the configuration) as what `listen()` takes: the host without brackets, the port. */
export function listenParts(address: string): { host: string; port: number } {
  const hp = splitHostPort(address);
  if (!hp || hp.port === undefined) throw new Error(`not a host:port address: ${address}`);
  return { host: hp.host.replace(/^\[(.*)\]$/, "$1"), port: Number(hp.port) };
}

/** The address with another port: where a listener asked for port 0 actually listens. */
export function withPort(address: string, port: number): string {
  const hp = splitHostPort(address);
  if (!hp) throw new Error(`not a host:port address: ${address}`);
  return `${hp.host}:${port}`;
}
