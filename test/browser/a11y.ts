import type { Page } from 'playwright-core';

/**
 * A basic accessibility check of what a page shows, run in the page: every visible form field has
 * a label, every button and link a name, every image (or role="img") a text alternative, the page
 * a language, and ids are unique (labels and aria-describedby point at one element). Not a full
 * audit: what a missing label or an icon-only button would break first. The project's TypeScript
 * has no DOM types: the page's objects are `any` here.
 */
export function accessibilityProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const doc = (globalThis as any).document;
    const problems: string[] = [];
    const all = (selector: string): any[] => [...doc.querySelectorAll(selector)];
    const visible = (el: any): boolean => {
      const r = el.getBoundingClientRect();
      return r.width > 0 || r.height > 0;
    };
    const text = (el: any): string => String(el?.textContent ?? '').trim();
    const describe = (el: any): string => `${String(el.tagName).toLowerCase()}${el.id ? `#${el.id}` : ''} "${text(el).slice(0, 40)}"`;
    const named = (el: any): boolean => {
      if (String(el.getAttribute('aria-label') ?? '').trim() !== '') return true;
      const by = String(el.getAttribute('aria-labelledby') ?? '');
      return by.split(/\s+/).some((id) => id !== '' && text(doc.getElementById(id)) !== '');
    };
    if (!doc.documentElement.lang) problems.push('html has no lang');
    for (const el of all('input, select, textarea')) {
      if (el.type === 'hidden' || !visible(el)) continue;
      const labelled = [...(el.labels ?? [])].some((l: any) => text(l) !== '');
      if (!labelled && !named(el)) problems.push(`field without a label: ${describe(el)}`);
    }
    for (const el of all('button, [role="button"]')) {
      if (visible(el) && text(el) === '' && !named(el)) problems.push(`button without a name: ${describe(el)}`);
    }
    for (const el of all('a[href]')) {
      if (visible(el) && text(el) === '' && !named(el)) problems.push(`link without a name: ${describe(el)}`);
    }
    for (const el of all('img')) if (!el.hasAttribute('alt')) problems.push(`image without alt: ${describe(el)}`);
    for (const el of all('[role="img"]')) if (!named(el)) problems.push(`role=img without a label: ${describe(el)}`);
    const ids = new Map<string, number>();
    for (const el of all('[id]')) ids.set(el.id, (ids.get(el.id) ?? 0) + 1);
    for (const [id, n] of ids) if (n > 1) problems.push(`id used ${n} times: ${id}`);
    return problems;
  });
}
