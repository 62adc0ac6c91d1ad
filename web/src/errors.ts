import { ApiError } from "./api";

/** An API failure as a sentence a person can act on. */
export function readable(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  return "Something went wrong; check your connection and try again.";
}
