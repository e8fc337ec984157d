export * from './errors.js';
export * from './model.js';
export { resolveConfig, resolveConfigDetailed, type ResolveInput, type ResolvedConfig } from './resolve.js';
export { ConfigStore, sectionValues, type SectionChange, type ReloadResult } from './store.js';
export { SETTINGS, findSetting, settingName, type Setting, type SectionName } from './schema/index.js';
export { renderShowText, renderShowJson } from './show.js';
export { renderSettingPage } from './docs/render.js';
