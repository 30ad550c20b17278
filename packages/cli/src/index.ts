export { main } from './main.js';
export {
  type FileAction,
  type FileChange,
  type WriteOptions,
  type WriteResult,
  writePytestFiles,
} from './setup/pytest-files.js';
