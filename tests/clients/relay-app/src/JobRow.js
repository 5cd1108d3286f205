// One row of a job list: the fields the row renders, as a fragment its parents spread.
// Like the rest of this app it is compiled by relay-compiler (never bundled or run):
// the tests use the persisted-queries file the compiler writes.
import { graphql, useFragment } from "react-relay";

export const JobRowFragment = graphql`
  fragment JobRow_job on Job {
    name
    status
    department
    employmentType
    location {
      city
      country
    }
  }
`;

export function JobRow({ job }) {
  const data = useFragment(JobRowFragment, job);
  const place = data.location ? [data.location.city, data.location.country] : [];
  return [data.name, data.status, data.department, ...place].filter(Boolean).join(" | ");
}
