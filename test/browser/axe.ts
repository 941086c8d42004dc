/// <reference lib="dom" />
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

interface AxeResult {
  id: string;
  impact: string | null;
  nodes: Array<{ target: string[]; failureSummary?: string }>;
}

/**
 * axe-core's verdict on the page: the serious and critical violations, as readable lines.
 * The page's context needs `bypassCSP: true` (axe is injected as a script tag).
 */
export async function axeAudit(page: Page, rules?: string[]): Promise<string[]> {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async (only) => {
    const axe = (window as unknown as { axe: { run(ctx: Document, opts: unknown): Promise<{ violations: AxeResult[] }> } }).axe;
    const result = await axe.run(document, only ? { runOnly: { type: 'rule', values: only } } : { resultTypes: ['violations'] });
    return result.violations;
  }, rules ?? null);
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => `${n.target.join(' ')} ${n.failureSummary ?? ''}`).join(' | ')}`);
}
