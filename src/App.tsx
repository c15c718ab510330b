export function App() {
  return (
    <main>
      <h1>Molmo2 Web</h1>
      <p>Drop a video to begin.</p>
    </main>
  );
}
