/**
 * What an operator notice may hold: text a phone shows as it is. Refused: control characters
 * (a line break excepted), the bidi embeddings, overrides and isolates (U+202A–U+202E,
 * U+2066–U+2069) that make text read other than it was written, and text with nothing
 * visible (only spaces, zero-width or format characters, fillers).
 */

/** C0 and C1 controls and DEL, but not the line feed. */
const CONTROL = /[\u0000-\u0009\u000B-\u001F\u007F-\u009F]/u;
/** Explicit bidi formatting: embeddings, overrides, their pop, isolates. LRM / RLM / ALM stay allowed. */
const BIDI_FORMATTING = /[\u202A-\u202E\u2066-\u2069]/u;
/** A character that shows something: not a space, a format or control character, a lone mark, or a blank filler. */
const VISIBLE = /[^\p{White_Space}\p{Cc}\p{Cf}\p{Z}\p{M}\u115F\u1160\u2800\u3164\uFFA0\uFE00-\uFE0F]/u;

const codePoint = (ch: string): string => `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** Why `text` cannot be a notice, as a sentence for a 400; undefined when it can. */
export function noticeTextProblem(text: string): string | undefined {
  const control = CONTROL.exec(text);
  if (control) {
    return `text must not contain control characters (${codePoint(control[0])} at position ${control.index}); a line break is allowed`;
  }
  const bidi = BIDI_FORMATTING.exec(text);
  if (bidi) {
    return `text must not contain bidi embeddings, overrides or isolates (${codePoint(bidi[0])} at position ${bidi.index}); write right-to-left text as it is`;
  }
  if (!VISIBLE.test(text)) {
    return 'text must contain a visible character';
  }
  return undefined;
}
