import { useEffect, useRef, useState } from "preact/hooks";
import { call, textOf } from "./api";
import type { FileItem, Job, JobPage } from "./api";
import { Alert, readable } from "./errors";
import { mediaType } from "./format";
import { Modal } from "./modal";

type Kind = Job["transformation_type"];

const IMAGE_KINDS: [Kind, string][] = [
  ["thumbnail", "Thumbnail"],
  ["resize", "Resize"],
  ["convert", "Convert"],
  ["ocr", "Read the text (OCR)"],
];

/** The transformations offered for a file, by its type. */
export function kindsFor(file: FileItem): [Kind, string][] {
  const type = mediaType(file);
  if (type === "application/pdf") return [["pdf_text", "Extract the text"]];
  return type.startsWith("image/") ? IMAGE_KINDS : [];
}

const isText = (kind: Kind) => kind === "ocr" || kind === "pdf_text";
const isRunning = (job: Job) => job.status === "pending" || job.status === "running";

/** A request's params from its form; blank fields are left to the API's defaults. */
function paramsOf(kind: Kind, form: FormData): Record<string, unknown> {
  const number = (name: string) => {
    const value = String(form.get(name) ?? "").trim();
    return value ? Number(value) : undefined;
  };
  switch (kind) {
    case "thumbnail":
      return { size: number("size") };
    case "resize":
      return { width: number("width"), height: number("height"), fit: form.get("fit") };
    case "convert":
      return { format: form.get("format") };
    case "ocr":
      return { languages: form.getAll("languages") };
    default:
      return {};
  }
}

function Options({ kind }: { kind: Kind }) {
  switch (kind) {
    case "thumbnail":
      return (
        <label>
          Size (pixels)
          <input name="size" type="number" min={1} max={8192} defaultValue="256" />
        </label>
      );
    case "resize":
      return (
        <>
          <label>
            Width (pixels)
            <input name="width" type="number" min={1} max={8192} />
          </label>
          <label>
            Height (pixels)
            <input name="height" type="number" min={1} max={8192} />
          </label>
          <label>
            Fit
            <select name="fit">
              <option value="contain">Inside the box</option>
              <option value="cover">Fill the box, cropped</option>
              <option value="exact">Exactly, stretched</option>
            </select>
          </label>
        </>
      );
    case "convert":
      return (
        <label>
          Format
          <select name="format">
            {["png", "jpeg", "webp", "gif"].map((format) => (
              <option key={format} value={format}>
                {format.toUpperCase()}
              </option>
            ))}
          </select>
        </label>
      );
    case "ocr":
      return (
        <fieldset>
          <legend>Languages (none ticked: any)</legend>
          {[
            ["en", "Latin script"],
            ["zh", "Chinese"],
            ["zh-Hant", "Traditional Chinese"],
            ["ja", "Japanese"],
          ].map(([code, name]) => (
            <label key={code} class="inline">
              <input type="checkbox" name="languages" value={code} /> {name}
            </label>
          ))}
        </fieldset>
      );
    default:
      return null;
  }
}

/**
 * A file's transformations: ask for one, follow the caller's jobs of this
 * file live, open an image result or read an extracted text.
 */
export function TransformDialog({
  file,
  onThumbnail,
  onMade,
  onOpen,
  onClose,
}: {
  file: FileItem;
  onThumbnail: (fileId: string, thumbnailId: string) => void;
  /** A job followed here completed: its result is a new file. */
  onMade: () => void;
  onOpen: (resultId: string) => void;
  onClose: () => void;
}) {
  const kinds = kindsFor(file);
  const [kind, setKind] = useState<Kind>(kinds[0][0]);
  const [jobs, setJobs] = useState<Job[]>([]);
  const [error, setError] = useState("");
  const [text, setText] = useState<{ job: string; text: string } | null>(null);
  const timer = useRef<number>();
  // Jobs seen pending or running, to tell when one completes.
  const running = useRef(new Set<string>());
  // Polls made since the last request: the pause between them grows.
  const polls = useRef(0);
  const open = useRef(true);

  async function reload() {
    window.clearTimeout(timer.current);
    try {
      const page = await call<JobPage>("GET", `/api/files/${file.id}/transformations?limit=20`);
      if (!open.current) return;
      setJobs(page.transformations);
      const finished = page.transformations.filter((job) => running.current.has(job.id) && !isRunning(job));
      running.current = new Set(page.transformations.filter(isRunning).map((job) => job.id));
      if (finished.some((job) => job.status === "complete")) onMade();
      const newestThumbnail = page.transformations.find(
        (job) => job.transformation_type === "thumbnail" && job.status === "complete" && job.result_file_id,
      );
      if (newestThumbnail?.result_file_id) onThumbnail(file.id, newestThumbnail.result_file_id);
      // Followed while any runs: each second at first, as a worker takes
      // seconds, then less often (a stopped worker is not polled hard).
      if (page.transformations.some(isRunning)) {
        window.clearTimeout(timer.current);
        const pause = Math.min(1000 * 1.25 ** polls.current++, 10_000);
        timer.current = window.setTimeout(reload, pause);
      }
    } catch (failure) {
      setError(readable(failure));
    }
  }

  useEffect(() => {
    void reload();
    return () => {
      open.current = false;
      window.clearTimeout(timer.current);
    };
  }, [file.id]);

  async function request(event: Event) {
    event.preventDefault();
    setError("");
    try {
      const params = paramsOf(kind, new FormData(event.currentTarget as HTMLFormElement));
      const job = await call<Job>("POST", `/api/files/${file.id}/transformations`, { type: kind, params });
      // Followed even if it completes before the next look.
      running.current.add(job.id);
      polls.current = 0;
      await reload();
    } catch (failure) {
      setError(readable(failure));
    }
  }

  async function showText(job: Job) {
    try {
      setText({ job: job.id, text: await textOf(job.result_file_id!) });
    } catch (failure) {
      setError(readable(failure));
    }
  }

  const label = (wanted: Kind) => kinds.find(([each]) => each === wanted)?.[1] ?? wanted;
  return (
    <Modal labelledBy="jobs-title" onClose={onClose}>
      <h2 id="jobs-title">Transform “{file.file_name}”</h2>
      <form onSubmit={request}>
        <label>
          Transformation
          <select aria-label="Transformation" value={kind} onChange={(event) => setKind(event.currentTarget.value as Kind)}>
            {kinds.map(([value, name]) => (
              <option key={value} value={value}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <Options kind={kind} />
        <button type="submit">Request</button>
      </form>
      <Alert message={error} />
      <p class="visually-hidden" aria-live="polite">
        {jobs[0] && `${label(jobs[0].transformation_type)}: ${jobs[0].status}.`}
      </p>
      <ul class="jobs" aria-label="Transformations">
        {jobs.map((job) => (
          <li key={job.id}>
            {label(job.transformation_type)}: <strong>{job.status}</strong>
            {job.error && <span class="error"> ({job.error})</span>}
            {job.status === "complete" && job.result_file_id && (
              <>
                {" "}
                {isText(job.transformation_type) ? (
                  <button type="button" onClick={() => showText(job)}>
                    Show text
                  </button>
                ) : (
                  <button type="button" onClick={() => onOpen(job.result_file_id!)}>
                    Open result
                  </button>
                )}
              </>
            )}
            {text?.job === job.id && (
              <pre class="text" tabIndex={0} aria-label={`Text read from ${file.file_name}`}>
                {text.text || "(no text found)"}
              </pre>
            )}
          </li>
        ))}
      </ul>
    </Modal>
  );
}
