// One plain-text table (also valid Markdown), a section heading row before each group.

const COLUMNS = [
  ['figure', 'figure', 'left'],
  ['n', 'N', 'right'],
  ['stackcast', 'stackcast', 'right'],
  ['baseline', 'baseline', 'right'],
  ['ratio', 'ratio', 'right'],
  ['floor', 'node floor', 'right'],
  ['nginx', 'nginx', 'right'],
  ['vsNginx', 'vs nginx', 'right'],
  ['target', 'target', 'left'],
];

/** `columns`: [key, title, 'left' | 'right'] each; default the columns of bench/run.mjs. */
export function renderTable(rows, columns = COLUMNS) {
  const lines = [];
  let section;
  const body = [];
  for (const row of rows) {
    if (row.section !== section) {
      section = row.section;
      body.push({ heading: section });
    }
    body.push(row);
  }
  const widths = columns.map(([key, title]) => Math.max(title.length, ...rows.map((r) => String(r[key] ?? '').length)));
  const cell = (text, i) => {
    const [, , align] = columns[i];
    const s = String(text ?? '');
    return align === 'right' ? s.padStart(widths[i]) : s.padEnd(widths[i]);
  };
  lines.push(`| ${columns.map(([, title], i) => cell(title, i)).join(' | ')} |`);
  lines.push(`|${columns.map(([, , align], i) => (align === 'right' ? `${'-'.repeat(widths[i] + 1)}:` : `:${'-'.repeat(widths[i] + 1)}`)).join('|')}|`);
  for (const item of body) {
    if (item.heading) {
      lines.push(`| **${item.heading}** |${columns.slice(1).map(() => ' ').join('|')}|`);
      continue;
    }
    lines.push(`| ${columns.map(([key], i) => cell(item[key], i)).join(' | ')} |`);
  }
  return lines.join('\n');
}
