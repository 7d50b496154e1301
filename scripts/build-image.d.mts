// Types for scripts/build-image.mjs.
export declare const IMAGE_DIR: string;
export declare const LAYOUT_DIR: string;
export declare const LAYER_MEDIA_TYPE: string;
export declare const CONFIG_MEDIA_TYPE: string;
export declare function imageTag(): string;
export declare function orasBinary(): string;
export declare function sha256Hex(bytes: Uint8Array): string;
export declare function tarOf(name: string, data: Uint8Array): Buffer;
export declare function storedGzip(data: Uint8Array): Buffer;
export declare function buildImage(opts?: { wasmPath?: string; stamp?: boolean }): {
  digest: string;
  moduleSha256: string;
  tag: string;
  layout: string;
  stamped: string[];
};
export declare function stampManifests(digest: string): string[];
