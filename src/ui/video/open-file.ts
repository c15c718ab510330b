import { useVideoStore } from '../../state/video-store.ts';
import { decoder } from './decode-client.ts';

/** Opens a dropped or picked file; a failure shows its message and keeps the previous video. */
export async function openVideoFile(file: File): Promise<void> {
  const store = useVideoStore.getState();
  store.setLoading(file.name);
  try {
    const info = await decoder().open(file);
    useVideoStore.getState().setLoaded(info);
  } catch (e) {
    useVideoStore.getState().setError(e instanceof Error ? e.message : String(e));
  }
}
