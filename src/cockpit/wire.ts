/** The runner's answers as they come: newline-delimited JSON, Link headers. */

/** Lines of newline-delimited JSON from a stream's blocks: the complete ones, and how much was used. */
export function completeLines(buffer: string): { lines: string[]; used: number } {
  const end = buffer.lastIndexOf('\n');
  if (end < 0) return { lines: [], used: 0 };
  return {
    lines: buffer
      .slice(0, end)
      .split('\n')
      .filter((line) => line.trim() !== ''),
    used: end + 1,
  };
}

/** A line parsed, or null when it is not a JSON object (a stream cut short). */
export function parseLine(line: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The path of a Link header's rel="next" (RFC 8288), as the runner writes it: `</v1/tasks?…>; rel="next"`. */
export function nextPage(link: string | undefined): string | null {
  const found = link === undefined ? null : /<([^>]+)>;\s*rel="next"/.exec(link);
  return found?.[1] ?? null;
}
