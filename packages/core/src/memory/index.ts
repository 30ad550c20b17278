export {
  type AdmissionInput,
  type AdmissionReason,
  type AdmissionVerdict,
  decideAdmission,
  type HolderMemory,
} from './admission.js';
export {
  AutoAdmission,
  type AutoSettings,
  admissionFor,
  defaultMaxSlots,
  defaultReserve,
  holdersOf,
  type TicketAdmission,
  ticketAdmission,
} from './auto.js';
export { type AvailableMemory, availableMemory } from './available.js';
export {
  type CommandIdentity,
  fingerprintOf,
  HISTORY_KEEP,
  HISTORY_VERSION,
  type History,
  historyFile,
  predictPeak,
  type RunRecord,
  readHistory,
  recordRun,
} from './history.js';
export { AutoHolder, type AutoMode, autoFromSettings } from './holder.js';
export {
  type MemoryMeasure,
  memoryOf,
  processMemory,
  pssOf,
  type TreeMemory,
  treeMemory,
  treeProcesses,
} from './measure.js';
export { PressureGuard } from './pressure.js';
export { PeakRecorder, SAMPLE_SCHEDULE, type SamplePhase } from './recorder.js';
export { type PressureAction, parseBudget, parsePressureAction, parseSlots } from './settings.js';
export { queueMemory, type TicketMemory } from './status.js';
