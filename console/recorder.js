// Microphone recording for the prompt: MediaRecorder's audio (WebM/Opus in Chromium, Ogg in
// Firefox) becomes an attached file, so Generate gets it as audio media; the gateway transcribes it
// when the chosen model takes no audio (Transcribe itself is bidirectional: HTTP/2 gRPC only).

// How often the recorder hands over data, and so how often the elapsed time is shown.
const SLICE_MS = 250;

export class Recorder {
  /** `onRecording(file)` receives each finished recording as a File. */
  constructor({ button, status, onRecording }) {
    Object.assign(this, { button, status, onRecording });
    this.recorder = null;
    button.addEventListener('click', () => this.toggle());
  }

  async toggle() {
    if (this.recorder) {
      this.recorder.stop();
      return;
    }
    if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === 'undefined') {
      this.status.textContent = 'recording needs a browser with MediaRecorder, on https or localhost';
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      this.status.textContent = `no microphone: ${error.message}`;
      return;
    }
    const chunks = [];
    const recorder = new MediaRecorder(stream);
    const started = performance.now();
    recorder.ondataavailable = (event) => {
      if (event.data.size) chunks.push(event.data);
      const seconds = (performance.now() - started) / 1000;
      this.status.textContent = `recording… ${seconds.toFixed(1)} s`;
    };
    recorder.onstop = () => {
      for (const track of stream.getTracks()) track.stop();
      this.recorder = null;
      this.button.textContent = 'Record';
      this.button.setAttribute('aria-pressed', 'false');
      const type = (recorder.mimeType || 'audio/webm').split(';')[0];
      const stamp = new Date().toISOString().slice(11, 19).replaceAll(':', '');
      this.status.textContent = '';
      this.onRecording(new File(chunks, `recording-${stamp}.${type.split('/')[1]}`, { type }));
    };
    recorder.start(SLICE_MS);
    this.recorder = recorder;
    this.button.textContent = 'Stop recording';
    this.button.setAttribute('aria-pressed', 'true');
    this.status.textContent = 'recording…';
  }
}
