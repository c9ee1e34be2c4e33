// Files attached to the next prompt, by the picker or by drag and drop: read in the browser and
// turned into prism.v1.Media parts (base64 `data`, as proto3's JSON mapping writes bytes).

/** A byte count for people: 12 B, 3.4 KB, 5.6 MB. */
export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** The bytes of a file (or a slice of one) as base64, without the `data:...;base64,` prefix a data URL has. */
export function readBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = String(reader.result);
      resolve(url.slice(url.indexOf(',') + 1));
    };
    reader.onerror = () => reject(reader.error ?? new Error(`could not read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

/** The attachments list: what is attached, shown with a remove button each. */
export class Attachments {
  constructor({ input, dropZone, list }) {
    this.files = [];
    this.list = list;
    input.addEventListener('change', () => {
      this.add(input.files);
      input.value = '';  // choosing the same file again fires change again
    });
    dropZone.addEventListener('dragover', (event) => {
      event.preventDefault();
      dropZone.classList.add('over');
    });
    dropZone.addEventListener('dragleave', () => dropZone.classList.remove('over'));
    dropZone.addEventListener('drop', (event) => {
      event.preventDefault();
      dropZone.classList.remove('over');
      this.add(event.dataTransfer.files);
    });
  }

  add(files) {
    for (const file of files) this.files.push(file);
    this.render();
  }

  clear() {
    this.files = [];
    this.render();
  }

  render() {
    this.list.replaceChildren(...this.files.map((file, index) => {
      const item = document.createElement('li');
      const label = document.createElement('span');
      label.textContent = `${file.name} (${file.type || 'unknown type'}, ${formatBytes(file.size)})`;
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.textContent = 'Remove';
      remove.setAttribute('aria-label', `Remove ${file.name}`);
      remove.addEventListener('click', () => {
        this.files.splice(index, 1);
        this.render();
      });
      item.append(label, remove);
      return item;
    }));
  }

  /** The attached files as Part objects of a Message, `{media: {mimeType, data, name}}`. */
  async parts() {
    return Promise.all(this.files.map(async (file) => ({
      media: { mimeType: file.type, data: await readBase64(file), name: file.name },
    })));
  }
}
