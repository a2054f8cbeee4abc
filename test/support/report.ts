// Reading a report page back in tests: the ReportData it embeds.

import { expect } from 'vitest';
import { DATA_ELEMENT_ID, type ReportData } from '../../src/report/index.js';

export function embeddedData(html: string): ReportData {
  const m = new RegExp(`<script type="application/json" id="${DATA_ELEMENT_ID}">([\\s\\S]*?)</script>`).exec(html);
  expect(m).not.toBeNull();
  return JSON.parse(m![1]!) as ReportData;
}
