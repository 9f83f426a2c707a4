// Distinguished-name helpers that keep UTF-8 common names intact through node-forge.
import forge from 'node-forge';

// The typings declare valueTagClass as asn1.Class although forge stores the universal tag (asn1.Type) there.
const UTF8_TAG = forge.asn1.Type.UTF8 as number as forge.asn1.Class;

/** Longest common name X.509 allows (ub-common-name). */
export const MAX_COMMON_NAME_LENGTH = 64;

/** Throws a TypeError unless `cn` is a usable common name; `what` names the option in the message. */
export function assertCommonName(cn: unknown, what: string): asserts cn is string {
  if (typeof cn !== 'string' || cn.length === 0 || cn.length > MAX_COMMON_NAME_LENGTH) {
    throw new TypeError(`${what} must be a string of 1..${MAX_COMMON_NAME_LENGTH} characters`);
  }
}

/** A subject with a single CN, UTF8String encoded (PrintableString would forbid `_`, `@` and non-ASCII). */
export function commonNameSubject(cn: string): forge.pki.CertificateField[] {
  return [{ shortName: 'CN', value: cn, valueTagClass: UTF8_TAG }];
}

/** The decoded CN of a parsed name, or '' when it has none. */
export function commonNameOf(name: { attributes: forge.pki.CertificateField[] }): string {
  const attr = name.attributes.find((a) => a.shortName === 'CN');
  return attr ? decodedValue(attr) : '';
}

/**
 * Copies parsed attributes so they can be written again: forge keeps UTF8String values as raw bytes
 * when parsing but encodes them again when writing, which would double-encode non-ASCII text.
 */
export function rewritableAttributes(attrs: forge.pki.CertificateField[]): forge.pki.CertificateField[] {
  return attrs.map((a) => ({ ...a, value: decodedValue(a) }));
}

function decodedValue(attr: forge.pki.CertificateField): string {
  const value = typeof attr.value === 'string' ? attr.value : '';
  return attr.valueTagClass === UTF8_TAG ? forge.util.decodeUtf8(value) : value;
}
