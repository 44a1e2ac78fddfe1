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
    /** Expected size in bytes: a stream of another length fails with code EBADSIZE. */
    size?: number;
  }
  /**
   * A write-only stream into the cache (minipass). `promise()` settles once the content is in
   * place and the index entry is written; it rejects with code EINTEGRITY or EBADSIZE when
   * `integrity`/`size` were given and the data does not match (nothing is then stored).
   */
  export interface PutStream extends NodeJS.EventEmitter {
    write(chunk: Uint8Array): boolean;
    end(): this;
    promise(): Promise<void>;
  }
  const cacache: {
    put: {
      (cache: string, key: string, data: string | Uint8Array, opts?: PutOptions): Promise<string>;
      stream(cache: string, key: string, opts?: PutOptions): PutStream;
    };
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
      insert(cache: string, key: string, integrity: string, opts?: { metadata?: unknown; size?: number }): Promise<EntryInfo>;
      compact(cache: string, key: string, matchFn: (a: EntryInfo, b: EntryInfo) => boolean): Promise<EntryInfo[]>;
    };
  };
  export default cacache;
}
