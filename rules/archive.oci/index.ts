/**
 * archive.oci: a tree as a one-layer OCI container image, in an OCI image layout archive
 * (https://github.com/opencontainers/image-spec: image-layout.md, manifest.md, config.md).
 *
 *     FILENAME (tar)            oci-layout                  {"imageLayoutVersion":"1.0.0"}
 *                               index.json                  → the manifest, tagged TAG
 *                               blobs/sha256/<manifest>     → config + layer
 *                               blobs/sha256/<config>       created, Env, Cmd, Labels, diff_ids
 *                               blobs/sha256/<layer>        the tree as tar(+gzip|zstd)
 *
 * The JSON documents are written here (pure), with placeholders for what only the run knows —
 * the layer's digests and sizes, the config's and the manifest's — which the script fills in
 * with sed after hashing each blob in turn (layer → config → manifest → index). Their bytes are
 * fixed by this code, so the same tree gives the same digests on any machine; `created` is
 * SOURCE_DATE_EPOCH. Nothing here touches a registry: `imgmake push` (src/push.ts) does.
 */
import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  filename: string;
  tag: string;
  exclude: string[];
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workdir: string;
  user: string;
  labels: Record<string, string>;
  architecture: string;
  compression: 'gzip' | 'zstd' | 'none';
}

export const LAYER_MEDIA_TYPE = {
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  none: 'application/vnd.oci.image.layer.v1.tar',
} as const;
const COMPRESS = { gzip: 'gzip -n -6', zstd: 'zstd -q -T0 -6', none: 'cat' } as const;

/** The config, manifest and index as the script fills them in (@@NAME@@ placeholders). */
export function documents(o: Options): { config: string; manifest: string; index: string } {
  const sortedLabels = Object.fromEntries(Object.entries(o.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const config = {
    created: '@@CREATED@@',
    architecture: o.architecture,
    os: 'linux',
    config: {
      ...(o.user ? { User: o.user } : {}),
      Env: o.env,
      ...(o.entrypoint.length ? { Entrypoint: o.entrypoint } : {}),
      ...(o.cmd.length ? { Cmd: o.cmd } : {}),
      WorkingDir: o.workdir,
      ...(Object.keys(sortedLabels).length ? { Labels: sortedLabels } : {}),
    },
    rootfs: { type: 'layers', diff_ids: ['sha256:@@DIFF_ID@@'] },
    history: [{ created: '@@CREATED@@', created_by: 'imgmake archive.oci' }],
  };
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'sha256:@@CONFIG_DIGEST@@', size: '@@CONFIG_SIZE@@' },
    layers: [{ mediaType: LAYER_MEDIA_TYPE[o.compression], digest: 'sha256:@@LAYER_DIGEST@@', size: '@@LAYER_SIZE@@' }],
    annotations: { 'org.opencontainers.image.created': '@@CREATED@@' },
  };
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: 'sha256:@@MANIFEST_DIGEST@@',
      size: '@@MANIFEST_SIZE@@',
      annotations: { 'org.opencontainers.image.ref.name': o.tag },
      platform: { architecture: o.architecture, os: 'linux' },
    }],
  };
  // Sizes are numbers in JSON: their quoted placeholders lose the quotes.
  const text = (v: unknown): string => JSON.stringify(v).replace(/"(@@[A-Z_]+SIZE@@)"/g, '$1');
  return { config: text(config), manifest: text(manifest), index: text(index) };
}

/** `/boot/*` → the tar exclusion of member `./boot/*`. */
export function excludeArgs(paths: readonly string[]): string {
  return paths.map((p) => `--exclude=${q(`.${p}`)}`).join(' ');
}

const oci: RuleInvoke<Options> = (options, ctx) => {
  const tree = ctx.inputs['tree']!.path;
  const out = q(`./${options.filename}`);
  const docs = documents(options);
  return shell(ctx, [
    'export TZ=UTC LC_ALL=C',
    'w=./.archive.oci.partial',
    `rm -rf "$w" ${out}.partial && mkdir -p "$w/layout/blobs/sha256"`,
    'blobs="$w/layout/blobs/sha256"',
    'created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)',
    // The layer, as archive.tar packs a tree; hashed before and after compression.
    `tar -C ${q(tree)} --format=posix --sort=name --numeric-owner --anchored --wildcards ${excludeArgs(options.exclude)} \\`,
    `  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \\`,
    `  --mtime=@"$SOURCE_DATE_EPOCH" --clamp-mtime --xattrs --xattrs-include='*' -cf "$w/layer.tar" . || die 'packing the tree failed'`,
    'diff_id=$(sha256sum < "$w/layer.tar") && diff_id=${diff_id%% *}',
    `${COMPRESS[options.compression]} < "$w/layer.tar" > "$w/layer" || die 'compressing the layer failed'`,
    'rm -f "$w/layer.tar"',
    // blob FILE VAR: moves FILE into blobs/ under its digest; sets VAR_DIGEST and VAR_SIZE.
    'blob() { _d=$(sha256sum < "$1") && _d=${_d%% *} && _s=$(stat -c %s "$1") && mv -f "$1" "$blobs/$_d" && eval "$2_DIGEST=\\$_d $2_SIZE=\\$_s"; }',
    'blob "$w/layer" LAYER',
    // fill SRC DEST: the run file SRC with every placeholder known so far replaced.
    'fill() { sed -e "s/@@CREATED@@/$created/g" -e "s/@@DIFF_ID@@/$diff_id/g" -e "s/@@LAYER_DIGEST@@/${LAYER_DIGEST:-}/g" -e "s/@@LAYER_SIZE@@/${LAYER_SIZE:-}/g" \\',
    '  -e "s/@@CONFIG_DIGEST@@/${CONFIG_DIGEST:-}/g" -e "s/@@CONFIG_SIZE@@/${CONFIG_SIZE:-}/g" -e "s/@@MANIFEST_DIGEST@@/${MANIFEST_DIGEST:-}/g" -e "s/@@MANIFEST_SIZE@@/${MANIFEST_SIZE:-}/g" "$1" > "$2"; }',
    `fill ${ctx.run}/config.json "$w/config" && blob "$w/config" CONFIG`,
    `fill ${ctx.run}/manifest.json "$w/manifest" && blob "$w/manifest" MANIFEST`,
    `fill ${ctx.run}/index.json "$w/layout/index.json"`,
    `printf '%s' '{"imageLayoutVersion":"1.0.0"}' > "$w/layout/oci-layout"`,
    `tar -C "$w/layout" --format=gnu --sort=name --numeric-owner --owner=0 --group=0 --mode=u=rwX,go=rX --mtime=@"$SOURCE_DATE_EPOCH" -cf ${out}.partial oci-layout index.json blobs || die 'writing the archive failed'`,
    'rm -rf "$w"',
    `chmod 0644 ${out}.partial`,
    `touch -d "@$SOURCE_DATE_EPOCH" ${out}.partial`,
    `mv -f ${out}.partial ${out}`,
    `echo ${q(`${options.filename}: `)}"$(wc -c < ${out}) bytes, manifest sha256:$MANIFEST_DIGEST, layer $LAYER_SIZE bytes (${options.compression}), tag ${options.tag}"`,
  ], { 'config.json': docs.config, 'manifest.json': docs.manifest, 'index.json': docs.index });
};

export default oci;
