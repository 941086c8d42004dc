import { describe, expect, it } from 'vitest';
import { noticeTextProblem } from './notice-text.js';

describe('noticeTextProblem', () => {
  it.each([
    ['plain text', 'Clouds coming: stacking paused'],
    ['two lines', 'Clouds coming\nback in 10 min'],
    ['Arabic with a right-to-left mark', 'السماء صافية \u200F M31'],
    ['Hebrew', 'שמיים בהירים'],
    ['an emoji with a zero-width joiner', 'a 👩\u200D🚀 here'],
    ['an accent', 'Nébuleuse'],
  ])('accepts %s', (_what, text) => {
    expect(noticeTextProblem(text)).toBeUndefined();
  });

  it.each([
    ['a zero-width space only', '\u200B', /visible character/],
    ['zero-width joiners and spaces', ' \u200D\u2060 \uFEFF', /visible character/],
    ['a Hangul filler', '\u3164\u3164', /visible character/],
    ['a combining mark alone', '\u0301', /visible character/],
    ['a bell', 'ding\u0007', /control characters \(U\+0007 at position 4\)/],
    ['an escape sequence', '\u001B[2J clear', /control characters \(U\+001B/],
    ['a carriage return', 'a\rb', /control characters \(U\+000D/],
    ['a C1 control', 'a\u0085b', /control characters \(U\+0085/],
    ['a right-to-left override', 'photo\u202Egpj.exe', /bidi .*\(U\+202E at position 5\)/],
    ['a left-to-right isolate', 'a\u2066b\u2069', /bidi .*U\+2066/],
  ])('refuses %s, naming the problem', (_what, text, message) => {
    expect(noticeTextProblem(text)).toMatch(message);
  });
});
