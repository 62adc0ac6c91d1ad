// The API client: the types come from api/openapi.json (npm run
// api-types), so a contract change breaks this build, not the user.
import type { components } from "./api-types";

export type FileItem = components["schemas"]["File"];
export type FilePage = components["schemas"]["FilePage"];
export type Session = components["schemas"]["Session"];
export type NotificationPage = components["schemas"]["NotificationPage"];
export type ApiErrorBody = components["schemas"]["Error"];
export type User = components["schemas"]["User"];
export type Grant = components["schemas"]["Grant"];
export type GrantList = components["schemas"]["GrantList"];
export type Job = components["schemas"]["Transformation"];
export type Notification = components["schemas"]["Notification"];
export type UserPage = components["schemas"]["UserPage"];
export type JobPage = components["schemas"]["TransformationPage"];
export type AdminChange = components["schemas"]["AdminChange"];

/** An error the API answered, with its readable message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = "spindrive.token";

export const session = {
  token: (): string | null => localStorage.getItem(TOKEN_KEY),
  save: (token: string) => localStorage.setItem(TOKEN_KEY, token),
  clear: () => localStorage.removeItem(TOKEN_KEY),
};

async function failure(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as ApiErrorBody;
    return new ApiError(response.status, body.error.code, body.error.message);
  } catch {
    return new ApiError(response.status, "http_error", `${response.status} ${response.statusText}`);
  }
}

/** A JSON request; the parsed answer, or an ApiError. */
export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  const token = session.token();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  return (response.status === 204 ? undefined : await response.json()) as T;
}

/** Sends a file's bytes with progress (fetch cannot report upload
 * progress); the file as the API answers it. */
function sendBytes(
  method: string,
  path: string,
  file: File,
  headers: Record<string, string>,
  onProgress: (fraction: number) => void,
  signal: AbortSignal,
): Promise<FileItem> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(method, path);
    request.setRequestHeader("authorization", `Bearer ${session.token() ?? ""}`);
    request.setRequestHeader("content-type", file.type || "application/octet-stream");
    for (const [name, value] of Object.entries(headers)) request.setRequestHeader(name, value);
    request.responseType = "json";
    request.upload.onprogress = (event) => event.lengthComputable && onProgress(event.loaded / event.total);
    request.onload = () => {
      if (request.status === 200 || request.status === 201) return resolve(request.response as FileItem);
      const body = request.response as ApiErrorBody | null;
      reject(
        new ApiError(request.status, body?.error?.code ?? "http_error", body?.error?.message ?? `HTTP ${request.status}`),
      );
    };
    request.onerror = () => reject(new ApiError(0, "network", "the upload was interrupted"));
    if (signal.aborted) return reject(new ApiError(0, "cancelled", "cancelled"));
    signal.addEventListener("abort", () => request.abort());
    request.onabort = () => reject(new ApiError(0, "cancelled", "cancelled"));
    request.send(file);
  });
}

/** Uploads one file as a new file of the caller's. */
export function upload(file: File, onProgress: (fraction: number) => void, signal: AbortSignal): Promise<FileItem> {
  return sendBytes("POST", `/api/files?name=${encodeURIComponent(file.name)}`, file, {}, onProgress, signal);
}

/** Replaces a file's content, only if it is still the content listed (else
 * the API answers 412 and nothing changes). */
export function replace(
  target: FileItem,
  file: File,
  onProgress: (fraction: number) => void,
  signal: AbortSignal,
): Promise<FileItem> {
  const ifMatch = { "if-match": `"${target.sha256}"` };
  return sendBytes("PUT", `/api/files/${target.id}/content`, file, ifMatch, onProgress, signal);
}

/** A file's content. */
async function content(fileId: string): Promise<Blob> {
  const response = await fetch(`/api/files/${fileId}/content`, {
    headers: { authorization: `Bearer ${session.token() ?? ""}` },
  });
  if (!response.ok) throw await failure(response);
  return response.blob();
}

/**
 * A file's content as a blob: URL (for saving or showing), typed `asType`
 * when given: a blob: URL shares this page's origin, so what is shown is
 * typed by the UI (an image, a PDF, plain text), never by the uploader.
 */
export async function contentUrl(fileId: string, asType?: string): Promise<string> {
  const blob = await content(fileId);
  return URL.createObjectURL(asType ? new Blob([blob], { type: asType }) : blob);
}

/** A text file's content (an extraction's result). */
export async function textOf(fileId: string): Promise<string> {
  return (await content(fileId)).text();
}

/** Downloads a file's content and hands it to the browser to save. */
export async function download(file: FileItem): Promise<void> {
  const url = await contentUrl(file.id);
  const link = Object.assign(document.createElement("a"), { href: url, download: file.file_name });
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
