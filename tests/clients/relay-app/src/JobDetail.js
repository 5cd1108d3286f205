// A job page: a query with a required variable, and a @refetchable fragment on Job
// (a Node), for which the compiler generates JobDetailRefetchQuery over `node(id:)`.
import { graphql, useFragment, useLazyLoadQuery } from "react-relay";

export const JobDetailQuery = graphql`
  query JobDetailQuery($id: ID!) {
    job(id: $id) {
      id
      name
      ...JobDetail_job
    }
  }
`;

export const JobDetailFragment = graphql`
  fragment JobDetail_job on Job @refetchable(queryName: "JobDetailRefetchQuery") {
    description
    postUrl
    remoteWorkStatus
    stages {
      name
      index
    }
    hiringTeam {
      firstName
      lastName
      hiringTeamRoles
    }
    screeningQuestions {
      title
      required
      format {
        __typename
        ... on SingleSelectQuestionFormat {
          options {
            name
          }
        }
      }
    }
  }
`;

export function JobDetail({ id }) {
  const data = useLazyLoadQuery(JobDetailQuery, { id });
  const detail = useFragment(JobDetailFragment, data.job);
  return { name: data.job && data.job.name, stages: detail ? detail.stages.length : 0 };
}
