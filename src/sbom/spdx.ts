/**
 * The SPDX 2.3 JSON document of an image (pure): one package for the image itself, which the
 * document DESCRIBES and which CONTAINS one package per installed package, in the format-neutral
 * terms of packages/input.ts's InstalledPackage. It knows no package format.
 *
 * Deterministic by construction: no clock and no randomness. `created` is the time every tree
 * imgmake commits carries (SOURCE_DATE_EPOCH, 1980-01-01T00:00:00Z: the files in the image
 * have no later date), and `documentNamespace` is derived from the image's cache key, which
 * names everything the image was made from: `urn:imgmake:sbom:KEY:TARGET` (a URI that needs no
 * network host). The same image (same key, same target) gives the same bytes; keys are sorted
 * and packages are in the order the reader gives (by name, then architecture).
 */
import type { InstalledPackage } from '../packages/input.js';

export interface SpdxImage {
  /** The target's name: the document's and the image package's name. */
  target: string;
  /** The target's tree key: the namespace is derived from it. */
  key: string;
  /** What the target exports (file names), each with its sha256 when it is a regular file. */
  files: { name: string; sha256?: string }[];
  /** The pipeline whose tree's package database was read (said in a comment). */
  pipeline: string;
  /** `imgmake-0.1.0`: the creator tool. */
  tool: string;
  /** The creation time, ISO 8601 without fractions (derived, see above). */
  created: string;
}

/** `SPDXRef-Package-` + an idstring unique per name and architecture. */
export function packageId(p: Pick<InstalledPackage, 'name' | 'architecture'>): string {
  return `SPDXRef-Package-${`${p.name}-${p.architecture}`.replace(/[^A-Za-z0-9.-]/g, (c) => `-${c.charCodeAt(0).toString(16)}-`)}`;
}

export function spdxDocument(image: SpdxImage, packages: readonly InstalledPackage[]): object {
  const imageId = 'SPDXRef-Image';
  const refs = new Map<string, { id: string; name: string; text: string }>();
  for (const p of packages) for (const r of p.licenseRefs ?? []) if (!refs.has(r.id)) refs.set(r.id, r);
  const checksums = image.files.filter((f) => f.sha256).map((f) => ({ algorithm: 'SHA256', checksumValue: f.sha256! }));
  const doc = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: image.target,
    documentNamespace: `urn:imgmake:sbom:${image.key}:${encodeURIComponent(image.target)}`,
    creationInfo: {
      created: image.created,
      creators: [`Tool: ${image.tool}`],
      comment: `The packages installed in the tree of pipeline ${image.pipeline}, read from its package database.`,
    },
    packages: [
      {
        SPDXID: imageId,
        name: image.target,
        downloadLocation: 'NOASSERTION',
        filesAnalyzed: false,
        primaryPackagePurpose: 'OPERATING_SYSTEM',
        ...(image.files.length === 1 ? { packageFileName: image.files[0]!.name } : {}),
        ...(checksums.length === 1 ? { checksums } : {}),
        licenseConcluded: 'NOASSERTION',
        licenseDeclared: 'NOASSERTION',
        copyrightText: 'NOASSERTION',
      },
      ...packages.map((p) => ({
        SPDXID: packageId(p),
        name: p.name,
        versionInfo: p.version,
        ...(p.supplier ? { supplier: p.supplier } : {}),
        downloadLocation: 'NOASSERTION',
        filesAnalyzed: false,
        ...(p.fileName ? { packageFileName: p.fileName } : {}),
        ...(p.sha256 ? { checksums: [{ algorithm: 'SHA256', checksumValue: p.sha256 }] } : {}),
        licenseConcluded: 'NOASSERTION',
        licenseDeclared: p.license ?? 'NOASSERTION',
        copyrightText: 'NOASSERTION',
        primaryPackagePurpose: 'LIBRARY',
        externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }],
        comment: `architecture: ${p.architecture}`,
      })),
    ],
    ...(refs.size ? { hasExtractedLicensingInfos: [...refs.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((r) => ({ licenseId: r.id, name: r.name, extractedText: r.text })) } : {}),
    relationships: [
      { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageId },
      ...packages.map((p) => ({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: packageId(p) })),
    ],
  };
  return doc;
}

/** The document's bytes: two-space JSON and a final newline. */
export function spdxText(image: SpdxImage, packages: readonly InstalledPackage[]): string {
  return `${JSON.stringify(spdxDocument(image, packages), null, 2)}\n`;
}
