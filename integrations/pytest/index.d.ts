/** Version written into the header of every generated module; bumped when the templates change. */
export declare const TEMPLATE_VERSION: number;
/** Whether a project has the generated modules at its top (set up before seq_test_pytest/): kept there. */
export declare function isLegacyLayout(dir: string): boolean;
/** The directory the generated files are written to, next to the root conftest.py. */
export declare const PLUGIN_DIR: 'seq_test_pytest';
/** The generated files (in PLUGIN_DIR): the three modules and the package's __init__.py. */
export declare const GENERATED_FILES: readonly string[];
/** The module the root conftest.py registers: the vendored package. */
export declare const PLUGIN_MODULE: 'seq_test_pytest';
/** The plugin module, and the name of the packaged distribution's pytest11 entry point. */
export declare const PLUGIN_IMPL: 'seq_test_plugin';
/** The Python distribution of the plugin (built from pyproject.toml). */
export declare const DISTRIBUTION: 'seq-test-pytest';
/** The line added to (or written in) the root conftest.py. */
export declare const PLUGIN_LINE: string;
/** Absolute path of the templates (headerless bodies). */
export declare const TEMPLATE_DIR: string;

export type FileAction =
  /** The file did not exist and is (or would be, in a dry run) written. */
  | 'create'
  /** An intact generated file of another version or content, replaced in place. */
  | 'upgrade'
  /** A hand-edited, foreign or newer file replaced because `force` was given. */
  | 'overwrite'
  /** conftest.py: the plugin was added to it. */
  | 'edit'
  /** Already up to date. */
  | 'unchanged'
  /** Left alone: hand-edited, foreign, or newer; see `reason`. */
  | 'skip'
  /** conftest.py: the user must add the plugin; `reason` holds the exact edit. */
  | 'manual';

export interface FileChange {
  path: string;
  action: FileAction;
  /** The new content, when the file is (or would be) written. */
  content?: string;
  /** Why a file was skipped, overwritten, or needs a manual edit. */
  reason?: string;
  /** For 'upgrade': the version found in the old header. */
  from?: number;
}

export interface WriteResult {
  dir: string;
  dryRun: boolean;
  version: number;
  /** One entry per generated module, then one for conftest.py. */
  changes: FileChange[];
  /** Reasons of every 'skip' and 'manual' change: what the user still has to do. */
  manual: string[];
  /** True when nothing is left to the user. */
  complete: boolean;
}

export interface WriteOptions {
  /** Overwrite generated files that were edited by hand, carry no header, or come from a newer version. */
  force?: boolean;
  /** Plan only: write nothing, report what would change (with the content). */
  dryRun?: boolean;
}

/**
 * Writes or upgrades the pytest bridge in `targetDir`, pytest's rootdir (where pytest.ini, pyproject.toml,
 * setup.cfg or tox.ini is, and the root conftest.py is or will be). Never overwrites conftest.py: only the
 * plugin's name is added to it. Throws when `targetDir` is not a directory.
 */
export declare function writePytestFiles(targetDir: string, options?: WriteOptions): WriteResult;

/** The full text of one generated module: header line, then the template. */
export declare function renderFile(name: string): string;

/** The header of a generated file, or undefined when it has none. */
export declare function readHeader(text: string): { version: number; sha256: string; intact: boolean } | undefined;

/** The plan for one generated module given its current text (undefined when absent). */
export declare function planGenerated(
  name: string,
  current: string | undefined,
  force?: boolean,
): Omit<FileChange, 'path'>;

/** The plan for conftest.py given its current text (undefined when absent). */
export declare function planConftest(current: string | undefined, path?: string): Omit<FileChange, 'path'>;
