// The part of cacache's API imgmake uses (cacache ships no types).
declare module 'cacache' {
  export interface EntryInfo {
    key: string;
    integrity: string;
    path: string;
    size: number;
    time: number;
    metadata?: unknown;
  }
  export interface PutOptions {
    metadata?: unknown;
    integrity?: string;
    algorithms?: string[];
  }
  const cacache: {
    put(cache: string, key: string, data: string | Uint8Array, opts?: PutOptions): Promise<string>;
    get: {
      (cache: string, key: string): Promise<{ data: Buffer; metadata?: unknown; integrity: string; size: number }>;
      info(cache: string, key: string): Promise<EntryInfo | null>;
      byDigest(cache: string, integrity: string): Promise<Buffer>;
      hasContent(cache: string, integrity: string): Promise<false | { sri: unknown; size: number }>;
    };
    ls(cache: string): Promise<Record<string, EntryInfo>>;
    rm: {
      entry(cache: string, key: string, opts?: { removeFully?: boolean }): Promise<void>;
      content(cache: string, integrity: string): Promise<void>;
      all(cache: string): Promise<void>;
    };
    verify(cache: string): Promise<Record<string, unknown>>;
    index: {
      compact(cache: string, key: string, matchFn: (a: EntryInfo, b: EntryInfo) => boolean): Promise<EntryInfo[]>;
    };
  };
  export default cacache;
}
