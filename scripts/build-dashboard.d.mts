/** Builds the dashboard into build/dashboard (scripts/build-dashboard.mjs). */
export function buildDashboard(options?: { quiet?: boolean }): Promise<{ dir: string; js: string; css: string }>;
