import { ApiError } from "./api";

/** An API failure as a sentence a person can act on. */
export function readable(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  return "Something went wrong; check your connection and try again.";
}

/** A failure shown where it happened, announced to screen readers; nothing when there is none. */
export function Alert({ message }: { message: string }) {
  return message ? (
    <p class="error" role="alert">
      {message}
    </p>
  ) : null;
}
