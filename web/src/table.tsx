import type { ComponentChildren } from "preact";

/** A table with a caption for screen readers and these column headings. */
export function Table({ caption, columns, children }: { caption: string; columns: string[]; children: ComponentChildren }) {
  return (
    <table>
      <caption class="visually-hidden">{caption}</caption>
      <thead>
        <tr>
          {columns.map((column) => (
            <th key={column} scope="col">
              {column}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}
