// The one way a question is asked: about the open video's current frame, selected frames or range,
// or about an open image, it becomes a run. The run appears at once, its points show on the overlay
// as the answer streams in (read token by token by the streaming parser), and the finished run is
// saved in the file's history. With nothing open, the question is sent alone and has no run. While
// "Answer on a server" is on, the same question (frames, times, turns) goes to that server instead,
// and its answer takes the same way into the run; the run names the server's model.
import { useResultsStore, newRunId } from '../../state/results-store.ts';
import type { Preset, Run, ScopePlan } from '../../state/results-types.ts';
import { useVideoStore } from '../../state/video-store.ts';
import { useModelStore } from '../../state/model-store.ts';
import { runCount } from '../../overlay/overlay-model.ts';
import { RunAnswer, runResult, type RunQuery } from '../results/run-result.ts';
import { collectScope } from '../video/scope.ts';
import { errorText, useAskStore } from '../../state/ask-store.ts';
import { checkScope } from './limits-check.ts';
import { followableRun, threadHistory } from './thread.ts';
import type { ChatTurn } from '../../molmo2/chat-template.ts';
import { serverTarget } from '../../state/server-store.ts';

/** A conversation a question continues: the earlier turns, and the run it follows up when that run is here. */
interface Thread {
  history: ChatTurn[];
  followUpOf?: string;
}

/**
 * Asks `question` about `scope` (undefined: nothing is open, the question goes alone). The
 * follow-up switch decides whether it continues a conversation; a re-run (`rerun`: the run it
 * repeats) asks within its run's own conversation and records where it came from.
 */
export async function askQuestion(question: string, preset: Preset, scope: ScopePlan | undefined, rerun?: Run): Promise<void> {
  const loaded = useModelStore.getState().loaded;
  const server = serverTarget();
  if ((!loaded && !server) || useAskStore.getState().status === 'running' || !question.trim()) return;
  if (!scope) {
    await useAskStore.getState().ask({ kind: 'none' }, { question });
    return;
  }
  const info = useVideoStore.getState().info;
  const fingerprint = useResultsStore.getState().fingerprint;
  const ask = useAskStore.getState();
  if (!info || !fingerprint) return;
  const followed = rerun ? undefined : followedRun(scope);
  const thread: Thread | undefined = rerun
    ? { history: rerun.result.query.history ?? [], followUpOf: rerun.followUpOf }
    : followed
      ? { history: threadHistory(followed), followUpOf: followed.id }
      : undefined;
  const history = thread?.history.length ? thread.history : undefined;
  // Refused before any frame is decoded (the worker checks again with the exact token count); a
  // server's limits are its own, and it says so itself.
  const check = checkScope(scope, info, question, server ? undefined : loaded?.limits, history);
  if (check.ok === false) return ask.fail(check.message ?? 'This question is too large for the loaded model.');

  const model = server ? { id: server.model, dtype: 'server' } : { id: loaded!.name, dtype: loaded!.dtype };
  const query: RunQuery = { question: question.trim(), preset, scope, model, maxNewTokens: useAskStore.getState().maxNewTokens, ...(history ? { history } : {}) };
  const createdAt = new Date().toISOString();
  const id = newRunId();
  const answer = new RunAnswer(query, info, createdAt);
  if (!ask.begin(id)) return;
  const results = useResultsStore.getState();
  results.addRun({ id, fingerprint, createdAt, question: query.question, preset, scope, status: 'running', result: answer.result, visible: true, ...(history && thread?.followUpOf ? { followUpOf: thread.followUpOf } : {}), ...(rerun ? { rerunOf: rerun.id } : {}) });
  results.announce('Asking…');

  let shownPoints = 0;
  const onText = (text: string) => {
    const result = answer.update(text);
    useResultsStore.getState().updateRun(id, { result });
    if (result.points.length > shownPoints) {
      shownPoints = result.points.length;
      useResultsStore.getState().announce(`${shownPoints} point${shownPoints === 1 ? '' : 's'} so far`);
    }
  };

  let visual;
  try {
    visual = await collectScope(scope, fingerprint);
  } catch (e) {
    const message = `The frames could not be decoded: ${errorText(e)}`;
    ask.fail(message);
    useResultsStore.getState().updateRun(id, { status: 'error', error: message }, true);
    return;
  }
  if (!useAskStore.getState().gathering) {
    // Stopped (Esc) while the frames were gathered.
    useResultsStore.getState().updateRun(id, { status: 'cancelled' }, true);
    useResultsStore.getState().announce('Stopped before the model saw the frames.');
    return;
  }
  const done = await useAskStore.getState().ask(visual, { question: query.question, history, maxNewTokens: query.maxNewTokens, runId: id, onText, frameTimes: scope.times });
  if (!done) {
    useResultsStore.getState().updateRun(id, { status: 'error', error: useAskStore.getState().error }, true);
    useResultsStore.getState().announce(`The question failed: ${useAskStore.getState().error ?? ''}`);
    return;
  }
  const { timings } = done;
  const timingMs: Record<string, number> = done.server
    ? { encodeMs: done.server.encodeMs, serverMs: done.server.serverMs }
    : { preprocessMs: timings.preprocessMs, visionMs: timings.visionMs, prefillMs: timings.prefillMs, decodeMs: timings.decodeMs };
  // The final result is parsed from the whole text, as an imported or re-opened run would be.
  const result = runResult(query, info, done.text, timingMs, createdAt);
  useResultsStore.getState().updateRun(id, { status: done.stoppedBy === 'cancel' ? 'cancelled' : 'done', result }, true);
  const n = result.points.length;
  useResultsStore
    .getState()
    .announce(`${done.stoppedBy === 'cancel' ? 'Stopped' : 'Answered'}: ${n} point${n === 1 ? '' : 's'}${n || result.count !== null ? `, count ${runCount(result)}` : ''}.`);
}

/** The run a question about `scope` continues, when the user asked for a follow-up and one qualifies. */
export function followedRun(scope: ScopePlan): Run | undefined {
  if (!useAskStore.getState().followUp) return undefined;
  const { runs, activeRunId } = useResultsStore.getState();
  return followableRun(runs, scope, activeRunId);
}
