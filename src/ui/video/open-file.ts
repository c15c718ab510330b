import { fileFingerprint } from '../../state/fingerprint.ts';
import { useResultsStore } from '../../state/results-store.ts';
import { useVideoStore } from '../../state/video-store.ts';
import { decoder } from './decode-client.ts';

/**
 * Opens a dropped or picked file; a failure shows its message and keeps the previous video (and its
 * results). A video that opens brings back its own question history.
 */
export async function openVideoFile(file: File): Promise<void> {
  const store = useVideoStore.getState();
  store.setLoading(file.name);
  try {
    const info = await decoder().open(file);
    const fingerprint = await fileFingerprint(file);
    useVideoStore.getState().setLoaded(info, file);
    await useResultsStore.getState().openVideo(fingerprint);
  } catch (e) {
    useVideoStore.getState().setError(e instanceof Error ? e.message : String(e));
  }
}
