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

export function renderTable(rows) {
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
  const widths = COLUMNS.map(([key, title]) => Math.max(title.length, ...rows.map((r) => String(r[key] ?? '').length)));
  const cell = (text, i) => {
    const [, , align] = COLUMNS[i];
    const s = String(text ?? '');
    return align === 'right' ? s.padStart(widths[i]) : s.padEnd(widths[i]);
  };
  lines.push(`| ${COLUMNS.map(([, title], i) => cell(title, i)).join(' | ')} |`);
  lines.push(`|${COLUMNS.map(([, , align], i) => (align === 'right' ? `${'-'.repeat(widths[i] + 1)}:` : `:${'-'.repeat(widths[i] + 1)}`)).join('|')}|`);
  for (const item of body) {
    if (item.heading) {
      lines.push(`| **${item.heading}** |${COLUMNS.slice(1).map(() => ' ').join('|')}|`);
      continue;
    }
    lines.push(`| ${COLUMNS.map(([key], i) => cell(item[key], i)).join(' | ')} |`);
  }
  return lines.join('\n');
}
