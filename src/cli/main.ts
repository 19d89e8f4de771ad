#!/usr/bin/env node
// The `chjob` command.
import { Command } from "commander";
import { serve } from "./serve.js";

const program = new Command()
  .name("chjob")
  .description("Run ClickHouse queries as asynchronous export jobs over gRPC")
  .showHelpAfterError();

program
  .command("serve")
  .description("start the service (configuration from the environment and ./.env)")
  .action(async () => {
    process.exitCode = await serve();
  });

await program.parseAsync(process.argv);
