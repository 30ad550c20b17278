import { describe, expect, it } from 'vitest';
import { identityOf, type ProcessIdentity } from '../src/identity.js';
import type { Ticket } from '../src/lock/protocol.js';
import type { QueueEntry } from '../src/lock/queue.js';
import { type AdmissionInput, decideAdmission } from '../src/memory/admission.js';
import { admissionFor, ticketAdmission } from '../src/memory/auto.js';
import type { AvailableMemory } from '../src/memory/available.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

function input(over: Partial<AdmissionInput> = {}): AdmissionInput {
  return {
    maxSlots: 4,
    waitingAhead: 0,
    holders: [{ predictedBytes: 500 * MiB, currentBytes: 400 * MiB }],
    headPredictedBytes: 500 * MiB,
    availableBytes: 2 * GiB,
    reserveBytes: 128 * MiB,
    ...over,
  };
}

describe('decideAdmission', () => {
  it('admits when the predicted peak fits: available − reserve − holders still to grow', () => {
    // room = 2048 − 128 − (500 − 400) = 1820 MiB ≥ 500
    expect(decideAdmission(input())).toMatchObject({ admit: true, reason: 'fits', roomBytes: 1820 * MiB });
  });

  it('waits when it does not, saying what it needs and what there is', () => {
    const verdict = decideAdmission(
      input({ availableBytes: 700 * MiB + 128 * MiB + 100 * MiB, headPredictedBytes: 1.2 * GiB }),
    );
    expect(verdict).toMatchObject({ admit: false, reason: 'memory', roomBytes: 700 * MiB });
    expect(verdict.text).toBe(
      'needs ~1.2 GiB, 700 MiB available above the reserve (holders still expected to grow by 100 MiB)',
    );
  });

  it('exactly enough room admits; one byte less waits', () => {
    const exact = 2 * GiB - 128 * MiB - 100 * MiB;
    expect(decideAdmission(input({ headPredictedBytes: exact })).admit).toBe(true);
    expect(decideAdmission(input({ headPredictedBytes: exact + 1 })).admit).toBe(false);
  });

  it('the head’s own memory now is taken off what it needs: it is already out of the available figure', () => {
    // A waiting Vitest whose tree (the run's peak included it) already holds 150 MiB needs 350 MiB more.
    const room = 2 * GiB - 128 * MiB - 100 * MiB;
    const head = { headPredictedBytes: room + 100 * MiB, headCurrentBytes: 150 * MiB };
    expect(decideAdmission(input(head))).toMatchObject({ admit: true, reason: 'fits', needBytes: room - 50 * MiB });
    expect(decideAdmission(input({ ...head, headCurrentBytes: 100 * MiB })).admit).toBe(true);
    expect(decideAdmission(input({ ...head, headCurrentBytes: 100 * MiB - 1 })).admit).toBe(false);
    // Not measured: the whole prediction, as before.
    expect(decideAdmission(input({ ...head, headCurrentBytes: null }))).toMatchObject({
      admit: false,
      needBytes: room + 100 * MiB,
    });
    // Above its prediction: it needs nothing more.
    expect(decideAdmission(input({ headPredictedBytes: MiB, headCurrentBytes: GiB })).needBytes).toBe(0);
    // The text says what it still needs.
    const waiting = decideAdmission(input({ ...head, headCurrentBytes: 0, availableBytes: GiB }));
    expect(waiting.text).toMatch(/^needs ~1\.9 GiB, /);
    // With a budget, the head is not in `free` (budget − the holders' current): it needs its whole peak.
    const budget = decideAdmission(input({ ...head, budgetBytes: 2 * GiB + 400 * MiB }));
    expect(budget).toMatchObject({ needBytes: room + 100 * MiB });
    // Garbage is no figure to admit on.
    for (const headCurrentBytes of [Number.NaN, -1, Number.POSITIVE_INFINITY])
      expect(decideAdmission(input({ ...head, headCurrentBytes }))).toMatchObject({ admit: false, reason: 'invalid' });
  });

  it('a holder above its prediction grows by nothing (never negative growth)', () => {
    const v = decideAdmission(input({ holders: [{ predictedBytes: 100 * MiB, currentBytes: 900 * MiB }] }));
    expect(v.roomBytes).toBe(2 * GiB - 128 * MiB);
  });

  it('sums the growth of every holder; an unmeasurable holder is assumed to be at 0', () => {
    const v = decideAdmission(
      input({
        holders: [
          { predictedBytes: 300 * MiB, currentBytes: 100 * MiB },
          { predictedBytes: 400 * MiB, currentBytes: null },
        ],
      }),
    );
    expect(v.roomBytes).toBe(2 * GiB - 128 * MiB - 200 * MiB - 400 * MiB);
  });

  it('with a budget: budget − Σ current replaces what is available', () => {
    const v = decideAdmission(input({ budgetBytes: 1 * GiB, availableBytes: 64 * GiB }));
    // free = 1024 − 400; room = 624 − 128 − 100 = 396 < 500
    expect(v).toMatchObject({ admit: false, reason: 'memory', roomBytes: 396 * MiB });
    // the budget applies even when the machine cannot tell what is available
    expect(decideAdmission(input({ budgetBytes: 4 * GiB, availableBytes: null })).admit).toBe(true);
  });

  it('FIFO: a waiter ahead keeps the head waiting even when it would fit (no backfill)', () => {
    expect(decideAdmission(input({ waitingAhead: 1 }))).toMatchObject({ admit: false, reason: 'fifo' });
  });

  it('at most maxSlots holders, however much memory there is', () => {
    const holders = Array.from({ length: 4 }, () => ({ predictedBytes: MiB, currentBytes: MiB }));
    expect(decideAdmission(input({ holders, availableBytes: 1024 * GiB }))).toMatchObject({
      admit: false,
      reason: 'max-slots',
    });
    expect(decideAdmission(input({ holders: holders.slice(1), availableBytes: 1024 * GiB })).admit).toBe(true);
    expect(decideAdmission(input({ maxSlots: 1 }))).toMatchObject({ admit: false, reason: 'max-slots' });
  });

  it('nothing holds: admitted alone, whatever is known or available (waiting would not free memory)', () => {
    for (const over of [
      { headPredictedBytes: null },
      { availableBytes: 0 },
      { availableBytes: null },
      { headPredictedBytes: 100 * GiB },
      { headPredictedBytes: Number.NaN },
    ]) {
      expect(decideAdmission(input({ holders: [], ...over }))).toMatchObject({ admit: true, reason: 'alone' });
    }
  });

  it('unknown head command: at most one holder (it runs alone once to be learned)', () => {
    expect(decideAdmission(input({ headPredictedBytes: null, availableBytes: 1024 * GiB }))).toMatchObject({
      admit: false,
      reason: 'unknown-head',
    });
  });

  it('a holder whose need is unknown (a version-1 ticket, no history) keeps the head waiting', () => {
    expect(
      decideAdmission(input({ holders: [{ predictedBytes: null, currentBytes: MiB }], availableBytes: 1024 * GiB })),
    ).toMatchObject({ admit: false, reason: 'unknown-holder' });
  });

  it('a holder whose command ended (only leftovers linger) is charged no growth; its live memory still counts', () => {
    // The heavy run that ended: predicted 1.5 GiB, 50 MiB left (its leftovers). Charged 1.45 GiB still to
    // grow, the head would wait for the linger to end; it cannot grow any more.
    const lingering = { predictedBytes: 1.5 * GiB, currentBytes: 50 * MiB, commandEnded: true };
    const head = { headPredictedBytes: 1.2 * GiB, availableBytes: 1.5 * GiB };
    expect(decideAdmission(input({ ...head, holders: [{ ...lingering, commandEnded: false }] }))).toMatchObject({
      admit: false,
      reason: 'memory',
    });
    const verdict = decideAdmission(input({ ...head, holders: [lingering] }));
    expect(verdict).toMatchObject({ admit: true, reason: 'fits', roomBytes: 1.5 * GiB - 128 * MiB });
    expect(verdict.text).toBe('needs ~1.2 GiB, 1.4 GiB available above the reserve');
    // With a budget, what it still uses is subtracted: 2 GiB − 50 MiB − 128 MiB.
    expect(decideAdmission(input({ ...head, budgetBytes: 2 * GiB, holders: [lingering] })).roomBytes).toBe(
      2 * GiB - 178 * MiB,
    );
    // A growing holder next to it is still charged.
    const both = [lingering, { predictedBytes: 500 * MiB, currentBytes: 100 * MiB }];
    expect(decideAdmission(input({ ...head, holders: both })).roomBytes).toBe(1.5 * GiB - 128 * MiB - 400 * MiB);
    // Its need no longer matters, known or not; a garbage current still never admits.
    expect(decideAdmission(input({ ...head, holders: [{ ...lingering, predictedBytes: null }] })).admit).toBe(true);
    expect(decideAdmission(input({ ...head, holders: [{ ...lingering, currentBytes: Number.NaN }] })).reason).toBe(
      'invalid',
    );
    // Nothing known about the head: it still runs alone once, lingering holders or not.
    expect(decideAdmission(input({ ...head, headPredictedBytes: null, holders: [lingering] })).reason).toBe(
      'unknown-head',
    );
  });

  it('under pressure (available below the reserve) nobody is admitted next to a holder', () => {
    expect(decideAdmission(input({ availableBytes: 100 * MiB, headPredictedBytes: 1 }))).toMatchObject({
      admit: false,
      reason: 'memory',
    });
  });

  it.each([
    ['NaN head', { headPredictedBytes: Number.NaN }],
    ['infinite head', { headPredictedBytes: Number.POSITIVE_INFINITY }],
    ['negative head', { headPredictedBytes: -1 }],
    ['NaN available', { availableBytes: Number.NaN }],
    ['unknown available, no budget', { availableBytes: null }],
    ['negative available', { availableBytes: -5 }],
    ['infinite available', { availableBytes: Number.POSITIVE_INFINITY }],
    ['NaN reserve', { reserveBytes: Number.NaN }],
    ['negative reserve', { reserveBytes: -1 }],
    ['NaN budget', { budgetBytes: Number.NaN }],
    ['negative budget', { budgetBytes: -1 }],
    ['NaN holder prediction', { holders: [{ predictedBytes: Number.NaN, currentBytes: 0 }] }],
    ['negative holder current', { holders: [{ predictedBytes: 1, currentBytes: -1e12 }] }],
    ['a string', { headPredictedBytes: '1' as unknown as number }],
  ] as [string, Partial<AdmissionInput>][])('garbage never admits: %s', (_name, over) => {
    expect(decideAdmission(input(over))).toMatchObject({ admit: false, reason: 'invalid' });
  });

  it.each([
    ['maxSlots 0', { maxSlots: 0 }],
    ['maxSlots 1.5', { maxSlots: 1.5 }],
    ['maxSlots NaN', { maxSlots: Number.NaN }],
    ['waitingAhead -1', { waitingAhead: -1 }],
  ] as [string, Partial<AdmissionInput>][])('invalid settings never admit: %s', (_name, over) => {
    expect(decideAdmission(input({ holders: [], ...over }))).toMatchObject({ admit: false, reason: 'invalid' });
  });

  it('the rules apply in order: fifo, then max-slots, then alone, then unknowns, then memory', () => {
    const full = Array.from({ length: 4 }, () => ({ predictedBytes: null, currentBytes: null }));
    expect(decideAdmission(input({ waitingAhead: 2, holders: full })).reason).toBe('fifo');
    expect(decideAdmission(input({ holders: full, headPredictedBytes: null })).reason).toBe('max-slots');
    expect(decideAdmission(input({ holders: full.slice(1), headPredictedBytes: null })).reason).toBe('unknown-head');
    expect(decideAdmission(input({ holders: full.slice(1) })).reason).toBe('unknown-holder');
  });

  it('exhaustively: admitted exactly when every rule allows it', () => {
    const sizes = [null, 0, 100 * MiB, 600 * MiB, 2 * GiB];
    let cases = 0;
    for (const maxSlots of [1, 2, 3])
      for (const waitingAhead of [0, 1])
        for (const holderCount of [0, 1, 2, 3])
          for (const head of sizes)
            for (const holderPredicted of sizes)
              for (const current of [null, 0, 300 * MiB])
                for (const available of [0, 256 * MiB, 1 * GiB, 4 * GiB])
                  for (const budget of [null, 1 * GiB])
                    for (const ended of [false, true])
                      for (const headCurrent of [null, 200 * MiB]) {
                        const holders = Array.from({ length: holderCount }, () => ({
                          predictedBytes: holderPredicted,
                          currentBytes: current,
                          commandEnded: ended,
                        }));
                        const v = decideAdmission({
                          maxSlots,
                          waitingAhead,
                          holders,
                          headPredictedBytes: head,
                          headCurrentBytes: headCurrent,
                          availableBytes: available,
                          budgetBytes: budget,
                          reserveBytes: 128 * MiB,
                        });
                        cases++;
                        let expected: boolean;
                        if (waitingAhead > 0 || holderCount >= maxSlots) expected = false;
                        else if (holderCount === 0) expected = true;
                        else if (head === null || (!ended && holderPredicted === null)) expected = false;
                        else {
                          const growth = ended ? 0 : holderCount * Math.max(0, (holderPredicted ?? 0) - (current ?? 0));
                          const free = budget === null ? available : budget - holderCount * (current ?? 0);
                          const need = budget === null ? Math.max(0, head - (headCurrent ?? 0)) : head;
                          expected = need <= free - 128 * MiB - growth;
                        }
                        expect(
                          v.admit,
                          JSON.stringify({
                            maxSlots,
                            waitingAhead,
                            holderCount,
                            head,
                            holderPredicted,
                            current,
                            available,
                            budget,
                            ended,
                            headCurrent,
                          }),
                        ).toBe(expected);
                      }
    expect(cases).toBe(3 * 2 * 4 * 5 * 5 * 3 * 4 * 2 * 2 * 2);
  });
});

describe('ticketAdmission (the admission field of another participant’s ticket)', () => {
  const good = {
    mode: 'auto',
    maxSlots: 2,
    fingerprint: 'a'.repeat(24),
    predictedBytes: 5 * MiB,
    budgetBytes: null,
    reserveBytes: null,
  };

  it('reads a version-2 field', () => {
    expect(ticketAdmission({ admission: good })).toEqual({ ...good, endedAt: null });
    expect(ticketAdmission({ admission: { ...good, endedAt: 1_764_000_000_000 } })?.endedAt).toBe(1_764_000_000_000);
  });

  it.each([
    ['negative', -1],
    ['a float', 1.5],
    ['a string', '1764000000000'],
    ['true', true],
    ['beyond 2^53', 2 ** 60],
  ])('a %s endedAt reads as "still running": the holder is charged its full growth', (_name, endedAt) => {
    const read = ticketAdmission({ admission: { ...good, endedAt } });
    expect(read?.endedAt).toBeNull();
  });

  it.each([
    ['no field (version 1)', undefined],
    ['a string', 'auto'],
    ['another mode', { ...good, mode: 'fixed' }],
    ['no fingerprint', { ...good, fingerprint: 7 }],
    ['maxSlots 0', { ...good, maxSlots: 0 }],
    ['maxSlots NaN-ish', { ...good, maxSlots: 'NaN' }],
  ])('%s: no admission field', (_name, admission) => {
    expect(ticketAdmission({ admission })).toBeUndefined();
  });

  it.each([
    ['negative', -5],
    ['zero', 0],
    ['huge', 2 ** 60],
    ['a float', 1.5],
    ['a string', '100'],
    ['null', null],
  ])('a %s prediction counts as unknown, so it admits nobody next to it', (_name, predictedBytes) => {
    const read = ticketAdmission({ admission: { ...good, predictedBytes } });
    expect(read?.predictedBytes).toBeNull();
    const verdict = decideAdmission({
      maxSlots: 4,
      waitingAhead: 0,
      holders: [{ predictedBytes: read?.predictedBytes ?? null, currentBytes: 0 }],
      headPredictedBytes: MiB,
      availableBytes: 1024 * GiB,
      reserveBytes: 0,
    });
    expect(verdict).toMatchObject({ admit: false, reason: 'unknown-holder' });
  });
});

describe('admissionFor (the rule on live figures)', () => {
  const GiB = 1024 ** 3;
  // A real holder: this test process, whose tree is measured (well under 1 GiB) like any holder's.
  const me = identityOf(process.pid) as ProcessIdentity;
  const holder: QueueEntry = {
    name: '000000000001-holder.json',
    file: '/nonexistent/000000000001-holder.json',
    number: 1,
    token: 'holder',
    owner: me,
    alive: true,
    ticket: {
      ...({} as Ticket),
      startedAt: Date.now(),
      admission: { mode: 'auto', maxSlots: 4, fingerprint: 'f', predictedBytes: GiB, endedAt: null },
    },
  };
  /** readAvailable returning these figures in turn (the last one from then on), counting its calls. */
  const figures = (...gib: (number | undefined)[]) => {
    let calls = 0;
    const read = (): AvailableMemory | undefined => {
      const g = gib[Math.min(calls++, gib.length - 1)];
      return g === undefined ? undefined : { bytes: g * GiB, source: 'test', totalBytes: 16 * GiB };
    };
    return { read, calls: () => calls };
  };

  // Found in the memory-admission benchmark (pytest -n 4 under a 3.9 GiB limit): two holders ramping up
  // gained 0.9 GiB while the head measured their trees, the head counted it as still free *and* as growth
  // already done, and a third run was admitted into an OOM kill.
  it('memory gained while the holders are measured is not counted as free: the lower of before and after', () => {
    for (const sequence of [
      [10, 10, 8], // the cheap pass, then before and after the measurement: gained 2 GiB meanwhile
      [10, 8, 10], // or freed meanwhile: the lower figure again
    ]) {
      const available = figures(...sequence);
      // need 8.5 GiB; room = 8 − (1 GiB − the holder's live tree) < 8.5 whatever that tree is (< 1.5 GiB).
      const verdict = admissionFor([holder], 8.5 * GiB, 4, { reserveBytes: 1 }, undefined, available.read);
      expect(available.calls()).toBe(3);
      expect(verdict.admit).toBe(false);
      expect(verdict.reason).toBe('memory');
      expect(verdict.roomBytes).toBeLessThan(8 * GiB);
    }
    // The same figures read steadily admit: it is the change during the measurement that waits.
    expect(admissionFor([holder], 8.5 * GiB, 4, { reserveBytes: 1 }, undefined, figures(10).read).admit).toBe(true);
  });

  it('a figure unreadable on either side of the measurement admits no one', () => {
    for (const sequence of [
      [10, undefined, 10],
      [10, 10, undefined],
    ]) {
      const verdict = admissionFor([holder], 1, 4, { reserveBytes: 1 }, undefined, figures(...sequence).read);
      expect(verdict).toMatchObject({ admit: false, reason: 'invalid' });
    }
  });

  it('the head’s own tree is measured and taken off its need, except with a budget', () => {
    // The head is a real process too (this one): its tree, a Node process, is well over 10 MiB.
    const need = (settings: { reserveBytes: number; budgetBytes?: number }, headPid?: number) =>
      admissionFor([holder], 4 * GiB, 4, settings, headPid, figures(10).read).needBytes as number;
    expect(need({ reserveBytes: 1 })).toBe(4 * GiB);
    const mine = need({ reserveBytes: 1 }, process.pid);
    expect(mine).toBeLessThan(4 * GiB - 10 * MiB);
    expect(mine).toBeGreaterThan(4 * GiB - GiB);
    expect(need({ reserveBytes: 1, budgetBytes: 10 * GiB }, process.pid)).toBe(4 * GiB);
  });
});
